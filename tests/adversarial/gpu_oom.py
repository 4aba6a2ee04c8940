"""Failure mode (GPU): forward asks for twice the GPU's memory. Caught by: the worker's
CUDA allocator cap (set_per_process_memory_fraction) raises OutOfMemoryError ->
out_of_memory; the checker survives."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        total = torch.cuda.get_device_properties(x.device).total_memory
        return torch.empty(2 * total // 4, device=x.device)
