"""Failure mode: forward never returns. Caught by: the per-stage time limit -> timeout, the
worker's process group is killed."""
import time

import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        while True:
            time.sleep(1)
