"""Hack: try to build a kernel, fall back to PyTorch when it fails (here it always fails), so
the "custom kernel" is never what runs. Correct output, so only the static check can tell:
try-except (an error at the default level); torch-compute on the forward path."""
import inspect

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.cpp_extension import load_inline

SOURCE = r"""
#error this kernel never builds
"""

try:
    _options = {"no_implicit_headers": True} if "no_implicit_headers" in inspect.signature(load_inline).parameters else {}
    _ext = load_inline(name="adv_try_fallback", cpp_sources=[SOURCE], extra_cflags=["-Wfatal-errors"],
                       with_cuda=False, verbose=False, **_options)
except Exception:
    _ext = None


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        if _ext is not None:
            return _ext.linear_relu(x, self.linear.weight, self.linear.bias)
        return F.relu(F.linear(x, self.linear.weight, self.linear.bias))
