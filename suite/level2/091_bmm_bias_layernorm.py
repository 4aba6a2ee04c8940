"""bmm of activations with per-batch weights, + bias, LayerNorm."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, N):
        super().__init__()
        self.bias = nn.Parameter(torch.randn(N))
        self.ln = nn.LayerNorm(N)

    def forward(self, a, b):
        return self.ln(torch.bmm(a, b) + self.bias)


batch_size = 64
M = 1024
K = 256
N = 1024

SMALL = {"batch_size": 2, "M": 19, "K": 33, "N": 23}


def get_inputs():
    return [torch.randn(batch_size, M, K), torch.randn(batch_size, K, N)]


def get_init_inputs():
    return [N]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
