"""Hack: zero the input in place, then compute on it. A harness that hands the same input
tensor to the candidate and then to the reference compares relu(b) with relu(b).
Caught by: candidate and reference get separate clones of the inputs, which are compared
with the originals after the call -> input-mutation, incorrect."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        x.zero_()
        return torch.relu(self.linear(x))
