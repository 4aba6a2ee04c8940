"""Hack: remember the last input tensor (weakly) and its result; called again with the same
tensor object, return a copy of the old result without computing. Every correctness trial
uses new tensors, so it passes those; a timing loop that reuses one input measures nothing.
Caught by: the recompute check (same tensor objects, contents changed in place) ->
identity-cache; on a GPU the timing also falls below the roofline floor ->
faster-than-roofline."""
import weakref

import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self._last = None

    def forward(self, x):
        if self._last is not None and self._last[0]() is x:
            return self._last[1].clone()
        y = torch.relu(self.linear(x))
        self._last = (weakref.ref(x), y)
        return y
