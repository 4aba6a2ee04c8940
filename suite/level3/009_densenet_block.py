"""DenseNet dense block: four BN-ReLU-Conv3x3 layers, each fed the concatenation of all before."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, num_layers, in_channels, growth_rate):
        super().__init__()
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            channels = in_channels + i * growth_rate
            self.layers.append(nn.Sequential(
                nn.BatchNorm2d(channels),
                nn.ReLU(),
                nn.Conv2d(channels, growth_rate, 3, padding=1, bias=False),
            ))

    def forward(self, x):
        features = [x]
        for layer in self.layers:
            features.append(layer(torch.cat(features, dim=1)))
        return torch.cat(features, dim=1)


batch_size = 32
num_layers = 4
in_channels = 64
growth_rate = 32
height = 56
width = 56

SMALL = {"batch_size": 2, "in_channels": 6, "growth_rate": 4, "height": 10, "width": 11}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [num_layers, in_channels, growth_rate]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
