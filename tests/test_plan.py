"""Planner decisions on small graphs (no build needed)."""
import torch

from fuseforge.capture import capture
from fuseforge.plan import plan


class ConvResidual(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1, bias=False)

    def forward(self, x):
        y = torch.relu(x) * 2          # kernel A
        z = self.conv(y)               # extern, reads A
        return torch.sigmoid(z) + y    # needs both: fusing it into A would be a cycle


def test_no_fusion_through_an_extern():
    p = plan(capture(ConvResidual(), [torch.randn(2, 4, 5, 5)]))
    assert [type(s).__name__ for s in p.steps] == ["Kernel", "Extern", "Kernel"]
    first, _, last = p.steps
    assert [n.target for n in first.nodes] == ["aten.relu.default", "aten.mul.Tensor"]
    assert first.outputs == [first.nodes[-1].outputs[0]]       # y is written once, read twice
    assert last.inputs[0].producer is p.steps[1].node or last.inputs[1].producer is p.steps[1].node


def test_conv_bias_is_added_by_the_kernel_after_it():
    """cuDNN adds a convolution's bias with a separate pass over the output: lowered to the
    convolution without bias and an add that fuses into the reader (ops/convs.py)."""
    model = ConvResidual()
    model.conv.bias = torch.nn.Parameter(torch.randn(4))
    p = plan(capture(model, [torch.randn(2, 4, 5, 5)]))
    conv = next(s.node for s in p.externs if s.node.target == "aten.conv2d.default")
    assert conv.arg("bias") is None
    last = p.steps[-1]
    assert [n.target for n in last.nodes][0] == "aten.add.Tensor", last.nodes
    assert any(v.producer is not None and v.producer.target == "aten.view.default" for v in last.inputs)


class Chain(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.randn(8, 1, 1))

    def forward(self, x):
        b = torch.tanh(self.bias) * 0.5             # smaller shape: recomputed per element
        return torch.clamp(x * b + 1.0, min=0.0, max=3.0) - x.mean()


def test_broadcast_producer_is_recomputed_not_materialised():
    from fuseforge.plan_rows import RowKernel
    p = plan(capture(Chain(), [torch.randn(2, 8, 4, 4)]))
    kernels = [k for k in p.kernels if not isinstance(k, RowKernel)]
    assert len(kernels) == 1
    names = [n.target for n in kernels[0].nodes]
    assert names[:2] == ["aten.tanh.default", "aten.mul.Tensor"]
    # the mean over everything is a row kernel of its own, read by the pointwise kernel
    assert [k.nodes[0].target for k in p.kernels if isinstance(k, RowKernel)] == ["aten.mean.default"]
    assert not p.externs
    assert len(kernels[0].outputs) == 1


class AddThenPermute(torch.nn.Module):
    """A pointwise op before a permute moves after it (lower.sink_past_permutes), its operands
    permuted too: `p` varies along two dims, so it needs a real permute, not a view; the dims
    are named from the end."""
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 6, 3, padding=1)
        self.p = torch.nn.Parameter(torch.randn(6, 5, 1))

    def forward(self, x):
        return torch.relu((self.conv(x) + self.p).permute(0, -2, -1, 1) * 2)


def test_pointwise_moved_after_a_permute_matches_eager():
    import fuseforge
    torch.manual_seed(0)
    model = AddThenPermute()
    x = torch.randn(2, 4, 5, 7)
    p = plan(capture(model, [x]))
    assert sum("moved after" in d for d in p.decisions) == 2, p.decisions   # the bias add, then + p
    fast = fuseforge.compile(model, [x])
    with torch.no_grad():
        x = torch.randn(2, 4, 5, 7)
        torch.testing.assert_close(fast(x), model(x), rtol=1e-5, atol=1e-5)


class GatedConv(torch.nn.Module):
    """A pointwise op before a split moves after it (lower.sink_past_splits): each piece of the
    conv's output gets its own ops, with the operand that varies along the split dim sliced, and
    fuses into the kernel that reads the piece."""
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv1d(4, 10, 3, padding=1)
        self.p = torch.nn.Parameter(torch.randn(10, 1))

    def forward(self, x):
        a, b = torch.split(self.conv(x) * self.p, [4, 6], dim=1)
        return torch.tanh(a), torch.sigmoid(b).sum(1)


def test_pointwise_moved_after_a_split_matches_eager():
    import fuseforge
    torch.manual_seed(0)
    model = GatedConv()
    x = torch.randn(2, 4, 9)
    p = plan(capture(model, [x]))
    assert sum("moved after split" in d for d in p.decisions) == 2, p.decisions   # the bias add, then * p
    assert not any(v.type.shape == (2, 10, 9) for k in p.kernels for v in k.outputs), p.decisions
    fast = fuseforge.compile(model, [x])
    with torch.no_grad():
        x = torch.randn(2, 4, 9)
        for got, want in zip(fast(x), model(x)):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


class Normalize(torch.nn.Module):
    """F.normalize divides by its norm expanded to the input's shape: the expand is dropped
    (lower.drop_expands), so that the division joins the norm's row kernel."""
    def forward(self, x):
        return torch.nn.functional.normalize(x, p=2.0, dim=2) * 3


def test_expand_read_by_pointwise_ops_is_dropped_and_matches_eager():
    import fuseforge
    from fuseforge.plan_rows import RowKernel
    x = torch.randn(2, 3, 40)
    p = plan(capture(Normalize(), [x]))
    assert any("dropped" in d for d in p.decisions), p.decisions
    assert [type(k) for k in p.kernels] == [RowKernel], p.decisions
    fast = fuseforge.compile(Normalize(), [x])
    x = torch.randn(2, 3, 40)
    torch.testing.assert_close(fast(x), Normalize()(x), rtol=1e-6, atol=1e-6)
