"""ConvTranspose3d, + constant, LayerNorm over channels (channels-last), GELU."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride, add_value):
        super().__init__()
        self.conv_t = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=stride, padding=1, output_padding=1)
        self.add_value = add_value
        self.ln = nn.LayerNorm(out_channels)

    def forward(self, x):
        x = (self.conv_t(x) + self.add_value).permute(0, 2, 3, 4, 1)
        return F.gelu(self.ln(x))


batch_size = 16
in_channels = 32
out_channels = 16
depth = 16
height = 32
width = 32
kernel_size = 3
stride = 2
add_value = 1.0

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 3, "height": 5, "width": 6}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride, add_value]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
