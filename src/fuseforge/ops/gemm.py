"""GEMM ops: matmul, mm, bmm, addmm, linear as one batched product C[b] = A[b] @ B[b].

An entry turns the node into a Gemm: the operands with their strides over (batch, row, k)
and (batch, k, col), an optional bias broadcast over the output, and alpha/beta as addmm
scales them. Leading dims of a linear/matmul input fold into the rows when their strides
allow it (x[b, s, K] @ W is one M = b*s product); batch dims fold into one batch dim.
What does not fold stays an extern (the reason says why).

Two lowerings bring more products to that form: a two-operand einsum that is a product (every
index in the output or in both operands) becomes permutes, reshapes and one matmul, as eager
computes it; a linear whose input's leading dims do not fold (a transposed activation) reads a
contiguous copy, the copy at::linear makes itself (matmul's reshape).
"""
from __future__ import annotations

import math

from dataclasses import dataclass

import torch

from ..graph import Node, Value
from .registry import GEMM, LOWER, register


@dataclass
class Operand:
    value: Value
    batch: int       # stride between the batch's matrices (0: shared by every batch)
    rows: int        # stride along M (for A) or N (for B)
    k: int           # stride along K


@dataclass
class Gemm:
    a: Operand       # A[b, m, k]
    b: Operand       # B[b, k, n], described by its n ("rows") and k strides
    batch: int
    m: int
    n: int
    k: int
    bias: Value | None = None       # broadcast to the output (addmm's self, linear's bias)
    alpha: float = 1.0
    beta: float = 1.0

    @property
    def flops(self) -> int:
        return 2 * self.batch * self.m * self.n * self.k

    def describe(self) -> str:
        lead = f"{self.batch} x " if self.batch > 1 else ""
        return f"{lead}[{self.m} x {self.k}] @ [{self.k} x {self.n}]"


def _fold(shape, strides) -> tuple[int, int] | None:
    """Dims that walk memory as one dim (each stride = the next one's stride x size): their
    total size and stride, else None. Size-1 dims fold anywhere."""
    dims = [(s, st) for s, st in zip(shape, strides) if s != 1]
    if not dims:
        return math.prod(shape), 0
    for (s0, st0), (s1, st1) in zip(dims, dims[1:]):
        if st0 != st1 * s1:
            return None
    return math.prod(shape), dims[-1][1]


def _matrix(v: Value, lead: int, transpose: bool = False) -> tuple | None:
    """(batch size, batch stride, rows, row stride, k stride) of v with `lead` batch dims;
    v's last two dims are (rows, k), or (k, rows) when transposed."""
    t = v.type
    shape, st = t.shape, t.strides
    batch = _fold(shape[:lead], st[:lead]) if lead else (1, 0)
    if batch is None:
        return None
    if transpose:
        return batch[0], batch[1], shape[-1], st[-1], st[-2]
    return batch[0], batch[1], shape[-2], st[-2], st[-1]


def _check_types(*values) -> str | None:
    for v in values:
        if v is not None and v.type.dtype != torch.float32:
            return f"{v.type.dtype} operands (the generated GEMM is float32)"
    return None


def _product(node: Node, a: Value, b: Value, bias: Value | None = None,
             alpha: float = 1.0, beta: float = 1.0) -> Gemm | str:
    """a[..., M, K] @ b[..., K, N] with batch dims broadcast as matmul does (b may be 2-d)."""
    why = _check_types(a, b, bias, node.outputs[0])
    if why:
        return why
    if a.type.ndim < 2 or b.type.ndim < 2:
        return "a matrix-vector product (cuBLAS gemv)"
    out = node.outputs[0].type
    rows = _fold(a.type.shape[:-1], a.type.strides[:-1]) if b.type.ndim == 2 else None
    if rows is not None:    # every leading dim of a joins the rows: one [M, K] @ [K, N]
        ga = Operand(a, 0, rows[1], a.type.strides[-1])
        m, batch, mb = rows[0], 1, None
    else:                   # batch dims, broadcast as matmul does
        lead = out.ndim - 2
        bshape = out.shape[:lead]
        ma = _matrix(_expand(a, bshape), lead)
        mb = _matrix(_expand(b, bshape), lead, transpose=True)
        if ma is None or mb is None:
            return "batch dims that do not fold into one"
        batch, m = math.prod(bshape), ma[2]
        ga = Operand(a, ma[1], ma[3], ma[4])
    gb = Operand(b, mb[1] if mb else 0, b.type.strides[-1], b.type.strides[-2])
    return Gemm(ga, gb, batch, m, b.type.shape[-1], a.type.shape[-1], bias, alpha, beta)


class _Expanded:
    """A Value seen with broadcast batch dims (stride 0 where it is broadcast)."""
    def __init__(self, v: Value, shape, strides):
        self.type = type(v.type)(tuple(shape), tuple(strides), v.type.dtype)


def _expand(v: Value, batch_shape) -> _Expanded:
    lead = len(batch_shape) - (v.type.ndim - 2)
    shape, strides = list(batch_shape), []
    for d, size in enumerate(batch_shape):
        j = d - lead
        own = v.type.shape[j] if j >= 0 else 1
        strides.append(v.type.strides[j] if j >= 0 and own == size else 0)
    return _Expanded(v, shape + list(v.type.shape[-2:]), strides + list(v.type.strides[-2:]))


def _matmul(node: Node) -> Gemm | str:
    return _product(node, node.arg("self"), node.arg("other"))


def _mm(node: Node) -> Gemm | str:
    return _product(node, node.arg("self"), node.arg("mat2"))


def _addmm(node: Node) -> Gemm | str:
    bias = node.arg("self")
    if not isinstance(bias, Value):
        return "a non-tensor bias"
    return _product(node, node.arg("mat1"), node.arg("mat2"), bias,
                    float(node.arg("alpha")), float(node.arg("beta")))


def _linear(node: Node) -> Gemm | str:
    x, w, bias = node.arg("input"), node.arg("weight"), node.arg("bias")
    why = _check_types(x, w, bias, node.outputs[0])
    if why:
        return why
    if x.type.ndim < 2 or w.type.ndim != 2:
        return "a linear on a 1-d input (cuBLAS gemv)"
    rows = _fold(x.type.shape[:-1], x.type.strides[:-1])
    if rows is None:
        return "the input's leading dims do not fold into rows"
    # y = x @ W^T: B[k, n] = W[n, k]
    return Gemm(Operand(x, 0, rows[1], x.type.strides[-1]), Operand(w, 0, w.type.strides[0], w.type.strides[1]),
                1, rows[0], w.type.shape[0], x.type.shape[-1], bias if isinstance(bias, Value) else None)


A = torch.ops.aten


def _einsum_as_matmul(node: Node, b):
    """A two-operand einsum as matmul([batch, M, K], [batch, K, N]) on permuted, reshaped operands,
    then the output's own dims and order; or why not."""
    equation, operands = node.arg("equation"), node.arg("tensors")
    if len(operands) != 2 or "->" not in equation or "." in equation:
        return "not a two-operand einsum with an explicit output"
    ia, ib = (s.strip() for s in equation.split("->")[0].split(","))
    out = equation.split("->")[1].strip()
    x, y = operands
    if any(len(set(s)) != len(s) for s in (ia, ib, out)) or len(ia) != x.type.ndim or len(ib) != y.type.ndim:
        return "an index repeated within one operand (a diagonal or trace)"
    batch = [c for c in out if c in ia and c in ib]
    ms = [c for c in out if c in ia and c not in ib]
    ns = [c for c in out if c in ib and c not in ia]
    ks = [c for c in ia if c in ib and c not in out]
    if set(ia) != set(batch + ms + ks) or set(ib) != set(batch + ks + ns) or set(out) != set(batch + ms + ns):
        return "an index summed within one operand"
    size = {c: n for s, v in ((ia, x), (ib, y)) for c, n in zip(s, v.type.shape)}
    if any(x.type.shape[ia.index(c)] != y.type.shape[ib.index(c)] for c in batch + ks):
        return "broadcast dims"
    if not ms or not ns or not ks:
        return "a product without rows, columns or a contraction (not a matrix product)"

    def arrange(v, dims, order, shape):
        perm = [dims.index(c) for c in order]
        if perm != list(range(len(perm))):
            v = b(A.permute.default, v, perm)
        return v if list(v.type.shape) == shape else b(A.reshape.default, v, shape)

    lead = [size[c] for c in batch]
    prod = lambda cs: math.prod(size[c] for c in cs)  # noqa: E731
    x3 = arrange(x, ia, batch + ms + ks, lead + [prod(ms), prod(ks)])
    y3 = arrange(y, ib, batch + ks + ns, lead + [prod(ks), prod(ns)])
    z = b(A.matmul.default, x3, y3)
    dims = batch + ms + ns                      # the product's own dims, then the output's order
    if list(z.type.shape) != [size[c] for c in dims]:
        z = b(A.reshape.default, z, [size[c] for c in dims])
    perm = [dims.index(c) for c in out]
    return z if perm == list(range(len(perm))) else b(A.permute.default, z, perm)


def _linear_on_copy(node: Node, b):
    """A linear whose input rows do not fold, on a contiguous copy of the input (at::linear's own
    reshape copies it too), so the product is one [M, K] @ [K, N]."""
    x = node.arg("input")
    if not isinstance(x, Value) or x.type.ndim < 3 or _fold(x.type.shape[:-1], x.type.strides[:-1]) is not None:
        return None                             # the usual case: nothing to say
    copy = b(A.clone.default, x, memory_format=torch.contiguous_format)
    return b(A.linear.default, copy, node.arg("weight"), node.arg("bias"))


register("aten.einsum.default", None, kind=LOWER, lower=_einsum_as_matmul)
register("aten.matmul.default", _matmul, kind=GEMM)
register("aten.mm.default", _mm, kind=GEMM)
register("aten.bmm.default", _mm, kind=GEMM)
register("aten.addmm.default", _addmm, kind=GEMM)
register("aten.linear.default", _linear, kind=GEMM, lower=_linear_on_copy)
