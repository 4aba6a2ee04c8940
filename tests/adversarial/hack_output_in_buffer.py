"""Hack: keep one output tensor in a (non-persistent) buffer, write every result into it and
return it: values are right at return time, but the caller's earlier outputs change under
it, and timing never pays for an allocation. Caught by: output storage overlapping a
parameter/buffer -> output-aliasing; the same storage as the previous call's output, which
is still alive -> output-reuse."""
import torch
import torch.nn as nn


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)
        self.register_buffer("_out", torch.empty(0), persistent=False)

    def forward(self, x):
        if self._out.shape != (x.shape[0], self.linear.out_features) or self._out.device != x.device:
            self._out = torch.empty(x.shape[0], self.linear.out_features, device=x.device)
        torch.addmm(self.linear.bias, x, self.linear.weight.t(), out=self._out)
        return self._out.relu_()
