"""Failure mode (GPU): a kernel that writes far outside any allocation (an illegal memory
access, which poisons the CUDA context). Caught by: the error surfaces at the worker's
synchronize after the call -> cuda_error; the checker (another process) survives."""
import inspect

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CPP_SOURCE = r"""
#include <ATen/core/Tensor.h>
#include <torch/csrc/utils/pybind.h>
at::Tensor scribble(const at::Tensor& x);
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) { m.def("scribble", &scribble); }
"""

CUDA_SOURCE = r"""
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAStream.h>
__global__ void scribble_kernel(float* p) { p[threadIdx.x + (1ll << 40)] = 1.0f; }
at::Tensor scribble(const at::Tensor& x) {
  scribble_kernel<<<1, 32, 0, c10::cuda::getCurrentCUDAStream()>>>(x.data_ptr<float>());
  return x;
}
"""

_options = {"no_implicit_headers": True} if "no_implicit_headers" in inspect.signature(load_inline).parameters else {}
_ext = load_inline(name="adv_cuda_error", cpp_sources=[CPP_SOURCE], cuda_sources=[CUDA_SOURCE],
                   verbose=False, **_options)


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return _ext.scribble(torch.relu(self.linear(x)))
