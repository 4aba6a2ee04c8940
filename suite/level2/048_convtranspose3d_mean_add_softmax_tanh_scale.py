"""ConvTranspose3d, mean over depth, + bias, softmax over channels, tanh, x scale."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, scale):
        super().__init__()
        self.conv_t = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=stride, padding=1, output_padding=1)
        self.bias = nn.Parameter(torch.randn(1, out_channels, 1, 1, 1))
        self.scale = scale

    def forward(self, x):
        x = torch.mean(self.conv_t(x), dim=2, keepdim=True) + self.bias
        return torch.tanh(torch.softmax(x, dim=1)) * self.scale


batch_size = 16
in_channels = 32
out_channels = 16
depth = 16
height = 32
width = 32
kernel_size = 3
stride = 2
scale = 2.0

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 3, "height": 5, "width": 6}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, scale]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
