"""Exclusive prefix sum: shift right by one (zero first), then cumsum."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self):
        super().__init__()

    def forward(self, x):
        shifted = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        return torch.cumsum(shifted, dim=1)


batch_size = 4096
length = 8192

SMALL = {"batch_size": 2, "length": 1001}


def get_inputs():
    return [torch.randn(batch_size, length)]


def get_init_inputs():
    return []


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
