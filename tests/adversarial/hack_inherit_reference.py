"""Hack: ModelNew inherits the reference (copied into the file) and adds a kernel that forward
never calls. Caught by the static check: reference-call (forward is Model.forward),
torch-compute on that path."""
import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.relu(self.linear(x))


def _build():
    return load_inline(name="adv_unused", cpp_sources=["int unused() { return 0; }"], functions=["unused"])


class ModelNew(Model):
    def __init__(self, features):
        super().__init__(features)
        self.ext = None   # built on demand, never

    def warm(self):
        self.ext = _build()
