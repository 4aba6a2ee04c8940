"""MaxPool2d, 3x3 window, stride 2, ceil_mode=True (a partial last window)."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, kernel_size, stride):
        super().__init__()
        self.pool = nn.MaxPool2d(kernel_size, stride=stride, ceil_mode=True)

    def forward(self, x):
        return self.pool(x)


batch_size = 16
channels = 64
height = 255
width = 255
kernel_size = 3
stride = 2

SMALL = {"batch_size": 2, "channels": 3, "height": 20, "width": 18}


def get_inputs():
    return [torch.randn(batch_size, channels, height, width)]


def get_init_inputs():
    return [kernel_size, stride]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
