"""Two outputs, a broadcast pointwise value recomputed per element, a value used by an extern
and by a later pointwise op (the fusion must not create a cycle), and a literal output."""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.scale = nn.Parameter(torch.randn(features))

    def forward(self, x):
        s = torch.sigmoid(self.scale) * 2          # shape (F,): recomputed inside the kernel
        y = torch.relu(x) * s
        z = self.linear(y)                         # extern consuming the kernel's output
        w = torch.tanh(z) + y                      # needs y and z: a second kernel
        return w, y.sum(dim=1), 3


def get_inputs():
    return [torch.randn(6, 13)]


def get_init_inputs():
    return [13]
