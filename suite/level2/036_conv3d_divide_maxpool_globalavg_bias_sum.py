"""Conv3d, / constant, 2x2x2 max pool, global average pool, + bias, channel sum."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, divisor):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size)
        self.divisor = divisor
        self.pool = nn.MaxPool3d(2)
        self.gap = nn.AdaptiveAvgPool3d(1)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1, 1))

    def forward(self, x):
        x = self.pool(self.conv(x) / self.divisor)
        x = self.gap(x) + self.bias
        return torch.sum(x, dim=1)


batch_size = 16
in_channels = 16
out_channels = 32
depth = 16
height = 64
width = 64
kernel_size = 3
divisor = 2.0

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 6, "height": 8, "width": 9}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, divisor]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
