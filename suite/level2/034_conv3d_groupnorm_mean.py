"""Conv3d, GroupNorm, mean over everything but the batch."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, num_groups):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size)
        self.gn = nn.GroupNorm(num_groups, out_channels)

    def forward(self, x):
        return self.gn(self.conv(x)).mean(dim=[1, 2, 3, 4])


batch_size = 16
in_channels = 16
out_channels = 32
depth = 16
height = 64
width = 64
kernel_size = 3
num_groups = 8

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 6, "height": 8, "width": 9, "num_groups": 2}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, num_groups]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
