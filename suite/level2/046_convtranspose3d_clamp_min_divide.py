"""ConvTranspose3d, clamp from below, / constant."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, min_value, divisor):
        super().__init__()
        self.conv_t = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=stride, padding=1, output_padding=1)
        self.min_value = min_value
        self.divisor = divisor

    def forward(self, x):
        return torch.clamp(self.conv_t(x), min=self.min_value) / self.divisor


batch_size = 16
in_channels = 32
out_channels = 16
depth = 16
height = 32
width = 32
kernel_size = 3
stride = 2
min_value = -0.5
divisor = 2.0

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 3, "height": 5, "width": 6}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, min_value, divisor]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
