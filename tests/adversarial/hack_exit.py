"""Failure mode / hack: leave the process with exit code 0 in the middle of the check (a harness
that trusts a zero exit status records success). Caught by: the worker's final event is
missing -> crash ("exited with code 0 ... before finishing")."""
import os

import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        os._exit(0)
