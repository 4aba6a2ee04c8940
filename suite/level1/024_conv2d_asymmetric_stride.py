"""2D convolution with a 5x3 kernel, stride (2, 1) and padding (2, 1)."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, padding):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=padding)

    def forward(self, x):
        return self.conv(x)


batch_size = 32
in_channels = 32
out_channels = 64
kernel_size = (5, 3)
stride = (2, 1)
padding = (2, 1)
height = 256
width = 192

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "height": 17, "width": 14}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, padding]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
