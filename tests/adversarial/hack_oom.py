"""Failure mode: forward allocates host memory until it runs out. Caught by: the worker's
address-space limit on CPU runs (MemoryError/allocation failure -> out_of_memory), or the
parent's RSS watch (kill -> out_of_memory)."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        hoard = []
        while True:
            hoard.append(torch.ones(64 * 1024 * 1024))   # 256 MB each, touched
