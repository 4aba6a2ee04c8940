"""BatchNorm2d in training mode (batch statistics, running stats updated)."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x):
        return self.bn(x)


batch_size = 16
channels = 64
height = 256
width = 256

SMALL = {"batch_size": 2, "channels": 5, "height": 13, "width": 12}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width) * 2 + 1]


def get_init_inputs():
    return [channels]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
