"""Depthwise-separable convolution: depthwise 3x3, ReLU6, pointwise 1x1, ReLU6."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, padding=kernel_size // 2, groups=in_channels)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1)

    def forward(self, x):
        x = F.relu6(self.depthwise(x))
        return F.relu6(self.pointwise(x))


batch_size = 32
in_channels = 64
out_channels = 128
height = 112
width = 112
kernel_size = 3

SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 8, "height": 15, "width": 16}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
