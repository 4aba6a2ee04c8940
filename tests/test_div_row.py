"""ff_div_row (codegen/cpp.DIV_ROW_PRELUDE): a softmax's exp(x - max) / sum with the division's
reciprocal once a row. On the GPU it must give the bits of the division itself (nvcc's a / s,
rounded to nearest) for every a and s a softmax makes (a in [0, 1], s >= 1), and the division's
bits for anything else (zero, tiny or NaN a, huge or NaN s). (On the CPU it is the division: the
CPU twins' softmax tests.)"""
import pytest
import torch

from fuseforge.build import prepare_environment
from fuseforge.codegen import cpp

KERNEL = r"""
#include <torch/extension.h>
__global__ void both(const float* a, const float* s, float* row, float* div, long long n) {
  const long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x;
  if (i < n) {
    row[i] = ff_div_row(a[i], s[i], ff_div_row_recip(s[i]));
    div[i] = a[i] / s[i];
  }
}
std::vector<at::Tensor> div_row_both(at::Tensor a, at::Tensor s) {
  auto row = at::empty_like(a), div = at::empty_like(a);
  const long long n = a.numel();
  both<<<(n + 255) / 256, 256>>>(a.data_ptr<float>(), s.data_ptr<float>(), row.data_ptr<float>(),
                                 div.data_ptr<float>(), n);
  return {row, div};
}
"""


def _operands(n: int, seed: int):
    """(a, s): a softmax's values and sums (a with every exponent from 2^-40 to 1, s from 1 to 64
    and up to 2^25), then the edges: a at 2^-32 and the float below it, 0, 1, a subnormal, NaN;
    s at 1, 2^24 and the float above it, inf, NaN."""
    g = torch.Generator().manual_seed(seed)
    a = torch.ldexp(torch.rand(n, generator=g) * 0.5 + 0.5, torch.randint(-39, 1, (n,), generator=g))
    s = torch.where(torch.rand(n, generator=g) < 0.5, 1 + 63 * torch.rand(n, generator=g),
                    torch.exp2(25 * torch.rand(n, generator=g)))
    below = torch.nextafter(torch.tensor(2.0 ** -32), torch.tensor(0.0)).item()
    edge_a = torch.tensor([2.0 ** -32, below, 0.0, 1.0, 1e-40, float("nan")])
    edge_s = torch.tensor([1.0, 3.0, 2.0 ** 24, torch.nextafter(torch.tensor(2.0 ** 24), torch.tensor(2.0 ** 25)).item(),
                           float("inf"), float("nan")])
    a = torch.cat([a, edge_a.repeat_interleave(len(edge_s))])
    s = torch.cat([s, edge_s.repeat(len(edge_a))])
    return a.float(), s.float()


@pytest.mark.gpu
def test_the_bits_of_the_division_on_cuda():
    from torch.utils.cpp_extension import load_inline
    prepare_environment()
    ext = load_inline("ff_test_div_row", cpp_sources="std::vector<at::Tensor> div_row_both(at::Tensor a, at::Tensor s);",
                      cuda_sources=cpp.PRELUDE + cpp.DIV_ROW_PRELUDE + KERNEL, functions=["div_row_both"])
    for seed in range(4):
        a, s = _operands(1 << 22, seed)
        row, div = ext.div_row_both(a.cuda(), s.cuda())
        differ = (row.view(torch.int32) != div.view(torch.int32)).nonzero().flatten().cpu()
        assert not len(differ), [(a[i].item(), s[i].item(), row[i].item(), div[i].item()) for i in differ[:5]]

