"""Hack: write the result into the input and return the input (no output allocation, and a
harness that reads the input later sees "its" data changed). Caught by: output storage
overlapping an input's storage where the reference's does not -> output-aliasing, and the
input comparison -> input-mutation."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        y = torch.relu(self.linear(x))
        x.copy_(y)
        return x
