"""ConvTranspose3d, BatchNorm3d (training), two 2x2x2 average pools."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, stride):
        super().__init__()
        self.conv_t = nn.ConvTranspose3d(in_channels, out_channels, kernel_size, stride=stride, padding=1, output_padding=1)
        self.bn = nn.BatchNorm3d(out_channels)
        self.pool1 = nn.AvgPool3d(2)
        self.pool2 = nn.AvgPool3d(2)

    def forward(self, x):
        return self.pool2(self.pool1(self.bn(self.conv_t(x))))


batch_size = 16
in_channels = 32
out_channels = 16
depth = 16
height = 32
width = 32
kernel_size = 3
stride = 2

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 4, "depth": 4, "height": 5, "width": 6}


def get_inputs():
    return [torch.randn(batch_size, in_channels, depth, height, width)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, stride]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
