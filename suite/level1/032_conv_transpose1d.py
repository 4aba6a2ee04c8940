"""1D transposed convolution with stride 2, padding 2 and output padding 1."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size):
        super().__init__()
        self.conv = nn.ConvTranspose1d(in_channels, out_channels, kernel_size, stride=2, padding=2, output_padding=1)

    def forward(self, x):
        return self.conv(x)


batch_size = 32
in_channels = 64
out_channels = 32
kernel_size = 5
length = 16384

SMALL = {"batch_size": 2, "in_channels": 5, "out_channels": 3, "length": 43}


def get_inputs():
    return [torch.randn(batch_size, in_channels, length)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
