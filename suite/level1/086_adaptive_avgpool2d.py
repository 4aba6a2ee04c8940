"""AdaptiveAvgPool2d to 7x7 from a size that 7 does not divide."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, output_size):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(output_size)

    def forward(self, x):
        return self.pool(x)


batch_size = 32
channels = 256
height = 100
width = 100
output_size = (7, 7)

SMALL = {"batch_size": 2, "channels": 3, "height": 17, "width": 23}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [output_size]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
