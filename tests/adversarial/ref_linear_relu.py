"""The small reference problem the adversarial candidates are written against: relu(x W^T + b).

Square (in = out features) so that a candidate can write its result into its input.
The GPU tests enlarge it with overrides (batch_size, features).
"""
import torch
import torch.nn as nn


class Model(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.relu(self.linear(x))


batch_size = 16
features = 32


def get_inputs():
    return [torch.randn(batch_size, features)]


def get_init_inputs():
    return [features]
