"""Hack: push a TorchDispatchMode at import that turns every relu into zeros (the reference's
too), and return zeros. Caught by: guards on the torch-function/dispatch mode stacks ->
torch-mode (popped) -> incorrect."""
import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode


class _ZeroRelu(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if func is torch.ops.aten.relu.default:
            return torch.zeros_like(out)
        return out


_ZeroRelu().__enter__()


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.zeros(x.shape[0], self.linear.out_features, device=x.device)
