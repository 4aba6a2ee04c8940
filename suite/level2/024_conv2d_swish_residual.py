"""Conv2d keeping the shape, swish, + the block input (residual)."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels, kernel_size):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)

    def forward(self, x):
        y = self.conv(x)
        return y * torch.sigmoid(y) + x


batch_size = 64
channels = 64
height = 128
width = 128
kernel_size = 3

SMALL = {"batch_size": 2, "channels": 6, "height": 16, "width": 17}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, kernel_size]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
