"""2D convolution with a 3x7 kernel and matching padding on a wide input."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, padding):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=padding)

    def forward(self, x):
        return self.conv(x)


batch_size = 32
in_channels = 32
out_channels = 64
kernel_size = (3, 7)
padding = (1, 3)
height = 128
width = 256

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 5, "height": 13, "width": 30}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, padding]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
