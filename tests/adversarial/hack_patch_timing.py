"""Hack: make timers report almost nothing (Event.elapsed_time, torch.cuda.synchronize,
time.perf_counter) while computing correctly. Caught by: guards -> monkeypatch, for each
replaced name; the timing uses clocks bound before the import."""
import itertools
import time

import torch
import torch.nn as nn

_fake_clock = itertools.count()
torch.cuda.Event.elapsed_time = lambda self, end: 0.001
torch.cuda.synchronize = lambda device=None: None
time.perf_counter = lambda: next(_fake_clock) * 1e-9


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return torch.relu(self.linear(x))
