"""LayerNorm over the last three dimensions (C, H, W) of an image batch."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, channels, height, width):
        super().__init__()
        self.ln = nn.LayerNorm((channels, height, width))

    def forward(self, x):
        return self.ln(x)


batch_size = 16
channels = 64
height = 128
width = 256

SMALL = {"batch_size": 2, "channels": 4, "height": 9, "width": 10}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [channels, height, width]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
