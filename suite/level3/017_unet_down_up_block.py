"""A small U-Net level: double conv, max-pool, bottleneck, transposed-conv upsample, skip concat."""
import torch
import torch.nn as nn


class DoubleConv(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )

    def forward(self, x):
        return self.net(x)


class Model(nn.Module):
    def __init__(self, in_channels, features, out_channels):
        super().__init__()
        self.down = DoubleConv(in_channels, features)
        self.pool = nn.MaxPool2d(2)
        self.bottom = DoubleConv(features, 2 * features)
        self.up = nn.ConvTranspose2d(2 * features, features, 2, stride=2)
        self.merge = DoubleConv(2 * features, features)
        self.head = nn.Conv2d(features, out_channels, 1)

    def forward(self, x):
        skip = self.down(x)
        x = self.bottom(self.pool(skip))
        x = torch.cat([skip, self.up(x)], dim=1)
        return self.head(self.merge(x))


batch_size = 16
in_channels = 3
features = 64
out_channels = 2
height = 128
width = 128

SMALL = {"batch_size": 2, "features": 4, "height": 16, "width": 18}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, features, out_channels]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
