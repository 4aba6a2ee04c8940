"""A softmax that only reductions or pooling read, split into its statistics and recomputed by its
readers (lower.split_reduced_softmax; FUSEFORGE_SPLIT_SOFTMAX=0 turns it off): the plan, and the results
against eager on fresh inputs."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import fuseforge
from fuseforge.capture import capture
from fuseforge.plan import plan
from fuseforge.plan_rows import ELEM, RowKernel

from .outputs import assert_same_layout_and_close


class SoftmaxReduced(nn.Module):
    """level2/039 and 038 at odd sizes: a 3D convolution, hardswish, relu, a softmax over the 12
    channels, then its mean over the pixels; and a 2D convolution's softmax max-pooled."""
    def __init__(self):
        super().__init__()
        self.c3, self.c2 = nn.Conv3d(3, 12, 3), nn.Conv2d(3, 10, 3)

    def forward(self, v, x):
        y = torch.softmax(torch.relu(F.hardswish(self.c3(v))), dim=1)
        return y.mean((2, 3, 4)), F.max_pool2d(torch.softmax(self.c2(x), dim=1), 2)


def inputs(seed, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(2, 3, 7, 9, 11, generator=g).to(device), torch.randn(2, 3, 13, 15, generator=g).to(device)]


def test_softmax_statistics_only_and_recomputed_by_the_readers(monkeypatch):
    def softmax_written(p):   # row kernels writing a full-size result
        return [k.name for k in p.kernels if isinstance(k, RowKernel) and any(k.phase.get(o) == ELEM for o in k.outputs)]
    p = plan(capture(SoftmaxReduced(), inputs(0)))
    assert softmax_written(p) == [], p.decisions
    assert sum("computed again by" in d for d in p.decisions) == 2, p.decisions
    assert sum("left to the kernels that reduce or pool it" in d for d in p.decisions) == 2, p.decisions
    monkeypatch.setenv("FUSEFORGE_SPLIT_SOFTMAX", "0")
    assert len(softmax_written(plan(capture(SoftmaxReduced(), inputs(0))))) == 2


@pytest.fixture(scope="module")
def split():
    torch.manual_seed(0)
    model = SoftmaxReduced()
    return model, fuseforge.compile(model, inputs(0))


def test_split_softmax_matches_eager_on_cpu(split):
    model, fast = split
    with torch.no_grad():
        assert_same_layout_and_close(fast(*inputs(1)), model(*inputs(1)), rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
def test_split_softmax_matches_eager_on_cuda(split):
    model, fast = split
    model, fast = model.cuda(), fast.cuda()
    with torch.no_grad():
        assert_same_layout_and_close(fast(*inputs(2, "cuda")), model(*inputs(2, "cuda")), rtol=1e-4, atol=1e-5)
