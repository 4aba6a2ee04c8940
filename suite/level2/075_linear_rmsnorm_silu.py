"""Linear, RMS norm written out (with weight), SiLU."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class Model(nn.Module):
    def __init__(self, in_features, out_features, eps):
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=False)
        self.weight = nn.Parameter(torch.rand(out_features) + 0.5)
        self.eps = eps

    def forward(self, x):
        x = self.linear(x)
        x = x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + self.eps) * self.weight
        return F.silu(x)


batch_size = 2048
in_features = 4096
out_features = 4096
eps = 1e-6

SMALL = {"batch_size": 2, "in_features": 37, "out_features": 48}


def get_inputs():
    return [torch.randn(batch_size, in_features)]


def get_init_inputs():
    return [in_features, out_features, eps]


if __name__ == "__main__":
    import sys

    if "--small" in sys.argv:
        globals().update(SMALL)
    out = Model(*get_init_inputs())(*get_inputs())
    print(tuple(o.shape for o in out) if isinstance(out, (tuple, list)) else out.shape)
