"""2D transposed convolution, 3x3 kernel, stride 1."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size)

    def forward(self, x):
        return self.conv(x)


batch_size = 32
in_channels = 64
out_channels = 32
kernel_size = 3
height = 128
width = 128

SMALL = {"batch_size": 2, "in_channels": 5, "out_channels": 3, "height": 14, "width": 15}


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
