"""Conv2d, clamp, x learnable per-channel multiplier, max over channels."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, clamp_min, clamp_max):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.multiplier = nn.Parameter(torch.randn(out_channels, 1, 1))
        self.clamp_min = clamp_min
        self.clamp_max = clamp_max

    def forward(self, x):
        x = torch.clamp(self.conv(x), self.clamp_min, self.clamp_max) * self.multiplier
        return torch.max(x, dim=1)[0]


batch_size = 64
in_channels = 32
out_channels = 64
height = 128
width = 128
kernel_size = 3
clamp_min = -0.5
clamp_max = 0.5

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 8, "height": 16, "width": 17}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, clamp_min, clamp_max]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
