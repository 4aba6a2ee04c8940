"""Failure mode: forward starts another process that takes the memory (outside the worker's
own allocator and address-space cap). Caught by: the parent sums the resident memory of the
worker's whole process tree and kills the group above the limit -> out_of_memory."""
import subprocess
import sys

import torch.nn as nn

GREEDY = "import time; block = bytearray(3 << 30); time.sleep(60)"


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        subprocess.run([sys.executable, "-c", GREEDY], check=True)
        return x
