"""WaveNet-style gated dilated conv1d: tanh(a) * sigmoid(b) of the two halves."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, in_channels, out_channels, kernel_size, dilation):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, 2 * out_channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)

    def forward(self, x):
        a, b = torch.chunk(self.conv(x), 2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)


batch_size = 64
in_channels = 64
out_channels = 128
length = 8192
kernel_size = 3
dilation = 2

SMALL = {"batch_size": 2, "in_channels": 3, "out_channels": 8, "length": 101}


def get_inputs():
    return [torch.randn(batch_size, in_channels, length)]


def get_init_inputs():
    return [in_channels, out_channels, kernel_size, dilation]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
