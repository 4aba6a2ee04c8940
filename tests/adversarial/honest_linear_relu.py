"""Honest candidate for ref_linear_relu.py: relu(x W^T + b) in one C++ loop nest on the CPU and
one CUDA kernel on the GPU (built only where CUDA is available). The checker must pass it
with no flags at the default static level."""
import inspect

import torch
import torch.nn as nn
from torch.utils.cpp_extension import load_inline

CPP_SOURCE = r"""
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/util/Exception.h>
#include <torch/csrc/utils/pybind.h>

#ifdef ADV_WITH_CUDA
void linear_relu_cuda(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& y);
#endif

at::Tensor linear_relu(const at::Tensor& x_in, const at::Tensor& w_in, const at::Tensor& b_in) {
  TORCH_CHECK(x_in.dim() == 2 && w_in.dim() == 2 && b_in.dim() == 1, "linear_relu: expects x[n,k], w[m,k], b[m]");
  TORCH_CHECK(x_in.scalar_type() == at::kFloat, "linear_relu: float32 only");
  const at::Tensor x = x_in.contiguous(), w = w_in.contiguous(), b = b_in.contiguous();
  const int64_t n = x.size(0), k = x.size(1), m = w.size(0);
  at::Tensor y = at::empty({n, m}, x.options());
  if (x.is_cuda()) {
#ifdef ADV_WITH_CUDA
    linear_relu_cuda(x, w, b, y);
    return y;
#else
    TORCH_CHECK(false, "linear_relu: built without CUDA");
#endif
  }
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  const float* bp = b.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      float acc = bp[j];
      for (int64_t t = 0; t < k; ++t) acc += xp[i * k + t] * wp[j * k + t];
      yp[i * m + j] = acc > 0.0f ? acc : 0.0f;
    }
  }
  return y;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("linear_relu", &linear_relu, "relu(x w^T + b)");
}
"""

CUDA_SOURCE = r"""
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>

__global__ void linear_relu_kernel(const float* x, const float* w, const float* b, float* y,
                                   int n, int k, int m) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  const int i = blockIdx.y;
  if (j >= m) return;
  float acc = b[j];
  for (int t = 0; t < k; ++t) acc += x[(long)i * k + t] * w[(long)j * k + t];
  y[(long)i * m + j] = acc > 0.0f ? acc : 0.0f;
}

void linear_relu_cuda(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b, const at::Tensor& y) {
  const int n = x.size(0), k = x.size(1), m = w.size(0);
  const dim3 grid((m + 127) / 128, n);
  linear_relu_kernel<<<grid, 128, 0, c10::cuda::getCurrentCUDAStream()>>>(
      x.data_ptr<float>(), w.data_ptr<float>(), b.data_ptr<float>(), y.data_ptr<float>(), n, k, m);
  C10_CUDA_KERNEL_LAUNCH_CHECK();
}
"""


def _build():
    with_cuda = torch.cuda.is_available()
    options = {}
    if "no_implicit_headers" in inspect.signature(load_inline).parameters:
        options["no_implicit_headers"] = True
    return load_inline(
        name="adv_honest_linear_relu" + ("_cuda" if with_cuda else "_cpu"),
        cpp_sources=[CPP_SOURCE],
        cuda_sources=[CUDA_SOURCE] if with_cuda else None,
        extra_cflags=["-O2"] + (["-DADV_WITH_CUDA"] if with_cuda else []),
        with_cuda=with_cuda,
        verbose=False,
        **options,
    )


_ext = _build()


class ModelNew(nn.Module):
    def __init__(self, features):
        super().__init__()
        self.linear = nn.Linear(features, features)

    def forward(self, x):
        return _ext.linear_relu(x, self.linear.weight, self.linear.bias)
