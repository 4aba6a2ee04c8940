"""Hack: compute a float32 problem in float16 (within atol = rtol = 1e-2, and faster on tensor
cores). Caught by: the float64 reference: the candidate's error is far above eager float32's
-> precision-downgrade; the static check -> precision."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        y = torch.addmm(self.linear.bias.half(), x.half(), self.linear.weight.half().t())
        return torch.relu(y).float()
