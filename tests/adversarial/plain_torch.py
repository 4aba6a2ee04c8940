"""Adversarial base case: a ModelNew that is just PyTorch (no kernel). Correct, so only the
static check can object: no-custom-kernel, forward-no-kernel, torch-compute."""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return F.relu(self.linear(x))
