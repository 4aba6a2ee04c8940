"""3D convolution with a 3x5x7 kernel, stride (1, 2, 2) and padding."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.conv(x)


batch_size = 16
in_channels = 16
out_channels = 32
kernel_size = (3, 5, 7)
stride = (1, 2, 2)
padding = (1, 2, 3)
depth = 32
height = 96
width = 96

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 5, "height": 11, "width": 12}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, padding]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
