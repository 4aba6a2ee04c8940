"""Failure mode: the extension does not compile. Caught by: the import stage -> build_error,
compiled = false, with the compiler's first error line and its log."""
import inspect

import torch.nn as nn
from torch.utils.cpp_extension import load_inline

SOURCE = r"""
int broken(int x) { return x + ; }
"""

_options = {"no_implicit_headers": True} if "no_implicit_headers" in inspect.signature(load_inline).parameters else {}
_ext = load_inline(name="adv_build_error", cpp_sources=[SOURCE], extra_cflags=["-Wfatal-errors"],
                   with_cuda=False, verbose=False, **_options)


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return _ext.broken(x)
