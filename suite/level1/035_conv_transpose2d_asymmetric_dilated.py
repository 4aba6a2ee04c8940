"""2D transposed convolution with a 3x5 kernel, stride (2, 1) and dilation (2, 1)."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=(2, 1), padding=(1, 2), dilation=(2, 1))

    def forward(self, x):
        return self.conv(x)


batch_size = 32
in_channels = 32
out_channels = 32
kernel_size = (3, 5)
height = 96
width = 192

SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 3, "height": 8, "width": 13}


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
