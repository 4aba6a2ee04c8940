"""Multiplies a large matrix by a scalar given at construction."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, scale):
        super().__init__()
        self.scale = scale

    def forward(self, A):
        return A * self.scale


M = 8192
N = 16384
scale = 3.14

SMALL = {"M": 60, "N": 70}


def get_inputs():
    return [torch.randn(M, N)]


def get_init_inputs():
    return [scale]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
