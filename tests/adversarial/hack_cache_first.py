"""Hack: compute once, return that same tensor forever. Caught by: output-reuse (the same
tensor object as the previous call, which is still alive), same-output (identical values
for different inputs), incorrect from the second trial on."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self._cached = None

    def forward(self, x):
        if self._cached is None:
            self._cached = torch.relu(self.linear(x))
        return self._cached
