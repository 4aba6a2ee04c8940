"""Hack (GPU): do the work on a side stream that the caller's stream never waits for. Timers
that record CUDA events on the default stream see almost nothing, and a harness that
synchronizes the device before comparing sees the right answer. Caught by: outputs copied
on the caller's stream at return and compared after a device synchronize -> late-write
(and incorrect); event time on the current stream far below the wall time to a
device-wide synchronize -> event-vs-wall; static: streams-threads."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            torch.cuda._sleep(50_000_000)        # tens of milliseconds of GPU time
            y = torch.relu(self.linear(x))
        return y
