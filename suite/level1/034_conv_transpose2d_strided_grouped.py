"""Grouped 2D transposed convolution: stride 2, padding 1, output padding 1."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, groups):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=2, padding=1, output_padding=1, groups=groups)

    def forward(self, x):
        return self.conv(x)


batch_size = 32
in_channels = 64
out_channels = 64
kernel_size = 3
groups = 4
height = 96
width = 96

SMALL = {"batch_size": 2, "in_channels": 8, "out_channels": 4, "height": 9, "width": 11}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, groups]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
