"""Conv2d, - constant, tanh, - constant, 2x2 average pooling."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, subtract1, subtract2, pool_size):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size)
        self.subtract1 = subtract1
        self.subtract2 = subtract2
        self.pool = nn.AvgPool2d(pool_size)

    def forward(self, x):
        x = torch.tanh(self.conv(x) - self.subtract1)
        return self.pool(x - self.subtract2)


batch_size = 64
in_channels = 32
out_channels = 64
height = 128
width = 128
kernel_size = 3
subtract1 = 0.5
subtract2 = 0.2
pool_size = 2

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 8, "height": 16, "width": 17}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, subtract1, subtract2, pool_size]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
