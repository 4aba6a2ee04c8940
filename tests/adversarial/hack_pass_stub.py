"""Hack: a "kernel" that is a Python stub with `pass`, called for show, while PyTorch computes.
Caught by the static check: pass-statement, forward-no-kernel (no extension is called),
torch-compute, no-custom-kernel."""
import torch
import torch.nn as nn


def fused_linear_relu_kernel(x, weight, bias):
    pass


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        fused_linear_relu_kernel(x, self.linear.weight, self.linear.bias)
        return torch.relu(x @ self.linear.weight.t() + self.linear.bias)
