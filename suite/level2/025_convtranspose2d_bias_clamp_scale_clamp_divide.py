"""ConvTranspose2d, + bias, clamp to [0, 1], x scale, clamp, / scale."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, scale):
        super().__init__()
        self.conv_t = nn.ConvTranspose2d(in_channels, out_channels, kernel_size, stride=stride, padding=1, output_padding=1)
        self.bias = nn.Parameter(torch.randn(out_channels, 1, 1) * 0.1)
        self.scale = scale

    def forward(self, x):
        x = torch.clamp(self.conv_t(x) + self.bias, min=0.0, max=1.0)
        x = torch.clamp(x * self.scale, min=0.0, max=1.0)
        return x / self.scale


batch_size = 32
in_channels = 64
out_channels = 32
height = 64
width = 64
kernel_size = 3
stride = 2
scale = 2.0

SMALL = {"batch_size": 2, "in_channels": 5, "out_channels": 4, "height": 8, "width": 9}


def get_inputs():
    return [torch.randn(batch_size, in_channels, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, scale]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
