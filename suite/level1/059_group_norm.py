"""GroupNorm with 8 groups on an image batch."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, num_groups, channels):
        super().__init__()
        self.gn = nn.GroupNorm(num_groups, channels)

    def forward(self, x):
        return self.gn(x)


batch_size = 16
channels = 64
num_groups = 8
height = 256
width = 256

SMALL = {"batch_size": 2, "channels": 16, "num_groups": 4, "height": 11, "width": 11}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width) * 2]


def get_init_inputs():
    return [num_groups, channels]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
