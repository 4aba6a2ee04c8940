"""Grouped 3D transposed convolution, stride 2, asymmetric 3x3x5 kernel."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, groups):
        super().__init__()
        self.conv = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=2, padding=(1, 1, 2), output_padding=1, groups=groups)

    def forward(self, x):
        return self.conv(x)


batch_size = 8
in_channels = 32
out_channels = 32
kernel_size = (3, 3, 5)
groups = 2
depth = 16
height = 32
width = 32

SMALL = {"batch_size": 2, "in_channels": 4, "out_channels": 4, "depth": 3, "height": 5, "width": 6}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, groups]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
