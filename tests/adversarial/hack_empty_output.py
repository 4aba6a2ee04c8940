"""Hack: compute nothing, return torch.empty() and hope it lands on memory where the
reference left the right answer (a harness that runs the reference first and frees its
output, then the candidate, is fooled on the GPU: the caching allocator hands the same block
back). Caught by: the candidate runs first on every trial, and freed memory is poisoned
(NaN with a payload) before it runs -> uninitialized-memory, incorrect."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.empty(x.shape[0], self.linear.out_features, device=x.device, dtype=x.dtype)
