"""plan_gemm: matrix products as generated tensor-core GEMMs with their epilogue fused.

A GEMM kernel computes one matmul/linear/bmm/addmm with float32 accuracy (three TF32
products on split operands, codegen/gemm.py) and runs the pointwise group that consumes its
result in the store of each output element, so the product is written once, already
transformed. The group is taken when it spans the product's shape, nothing outside needs a
value of it that is smaller than that shape, and the fused set reads nothing that depends
on itself. Products the generated kernel would run slower stay cuBLAS externs (the decision
log says why): matrix-vector shapes, large products with too few output tiles to fill the
GPU (no split-K yet), and, since the kernel is still slower than cuBLAS float32 on large
products, those where the fused epilogue saves too little (see `pays`).
"""
from __future__ import annotations

import math
import os

from dataclasses import dataclass

from . import ops
from .errors import ConfigError
from .graph import Node, Value
from .ops.gemm import Gemm
from .plan_fusion import FusedOps, each_spec, entry_spec, external_inputs, find_epilogue, needed_outside

SMS = 132                  # H100 SXM: output tiles below this leave multiprocessors idle
SMALL_TILE = 64            # the smaller of the two tile configurations (codegen/gemm.py)
TINY_FLOPS = 2e8           # below this a product is launch-bound: fusing always pays
MAX_BATCH = 65535          # the batch runs on gridDim.y
# Measured on the H100 (bench/gemm_h100.md): the generated GEMM runs at 0.86-0.95x cuBLAS
# float32 on large products, and its error reaches 4.8x cuBLAS float32's where two TF32 terms'
# 22 mantissa bits show (short K, terms of one sign). So by default no product uses it
# (FUSEFORGE_GEMM=off). FUSEFORGE_GEMM=auto takes a product when it is launch-bound (tiny) or
# when the epilogue pass it removes (one read and one write of the product at the copy rate)
# costs more than GEMM_DEFICIT of its cuBLAS time (measured 1.22x eager on level2/090);
# FUSEFORGE_GEMM=all takes every product it can compute.
DEFAULT_MODE = "off"
GEMM_DEFICIT = 0.15
CUBLAS_FP32_FLOPS = 52e12  # measured float32 GEMM rate (fuseforge bench's ceilings)
COPY_BYTES_PER_S = 3.0e12  # measured copy rate, bytes read + written


@dataclass(eq=False)
class GemmKernel(FusedOps):
    name: str
    nodes: list[Node]        # the product, then its epilogue (graph order)
    node: Node
    gemm: Gemm
    epilogue: list[Node]
    inputs: list[Value]
    outputs: list[Value]


def add_gemm_option(parser) -> None:
    """The command-line spelling of FUSEFORGE_GEMM (cli.py sets the variable, so worker
    processes see it too)."""
    parser.add_argument("--gemm", choices=["off", "auto", "all"], default=None,
                        help="generated 3xTF32 GEMMs: off (default; cuBLAS), auto (where the fused "
                             "epilogue pays), all (every product); same as FUSEFORGE_GEMM")


def mode() -> str:
    """FUSEFORGE_GEMM: "off" (the default, also "0"), "auto" (where it pays, also "1"), "all"."""
    m = os.environ.get("FUSEFORGE_GEMM", "") or DEFAULT_MODE
    m = {"0": "off", "1": "auto"}.get(m, m)
    if m not in ("off", "auto", "all"):
        raise ConfigError(f"FUSEFORGE_GEMM={m!r}: expected off, auto or all")
    return m


def gemm_of(node: Node) -> Gemm | str:
    """The product the generated GEMM can compute for this node, or why not."""
    spec = entry_spec(node, ops.GEMM, "matrix product", dense=False)
    if isinstance(spec, str):
        return spec
    if mode() == "off":
        return ("cuBLAS float32 (generated 3xTF32 GEMMs are opt-in, FUSEFORGE_GEMM=auto or all: "
                "slower than cuBLAS on large products and up to 4.8x its error on short ones)")
    if spec.batch > MAX_BATCH:
        return f"a batch of {spec.batch} (the generated GEMM takes up to {MAX_BATCH})"
    if min(spec.m, spec.n) == 1:
        return "a matrix-vector product (cuBLAS gemv)"
    tiles = spec.batch * math.ceil(spec.m / SMALL_TILE) * math.ceil(spec.n / SMALL_TILE)
    if tiles < SMS // 2 and spec.flops > TINY_FLOPS:
        return f"{tiles} output tiles for {spec.flops / 1e9:.1f} GFLOP: too few to fill the GPU without split-K"
    return spec


def pays(spec: Gemm, node: Node, epilogue) -> str | None:
    """None when the generated GEMM should run this product, else why cuBLAS does."""
    if mode() == "all" or spec.flops <= TINY_FLOPS:
        return None
    gemm_s = spec.flops / CUBLAS_FP32_FLOPS
    saved_s = 2 * node.outputs[0].type.numel * 4 / COPY_BYTES_PER_S if epilogue else 0.0
    if saved_s > GEMM_DEFICIT * gemm_s:
        return None
    return (f"cuBLAS float32 (the generated GEMM runs 0.86-0.95x its speed on large products, and the "
            f"epilogue pass it would save is {100 * saved_s / gemm_s:.0f}% of the product's time)")


def form_gemm_kernels(graph, groups, group_of, closed, users, live, decisions,
                      why_extern: dict) -> list[GemmKernel]:
    """A GEMM kernel for every product the generated GEMM takes; the pointwise group it
    absorbs as its epilogue is removed from `groups`."""
    kernels = []
    for node, spec in each_spec(graph, ops.GEMM, gemm_of, why_extern, decisions):
        members = {node}
        group = find_epilogue(node.outputs[0], members, groups, group_of, closed, users, live)
        why = pays(spec, node, group)
        if why:
            why_extern[node] = why
            decisions.append(f"{node.name} ({node.target}): extern, {why}")
            continue
        epilogue = list(group.nodes) if group else []
        if group:
            members |= set(group.nodes)
            groups.remove(group)
            decisions.append(f"{node.name}: pointwise group {epilogue[0].name}… fused into its epilogue")
        nodes = [node] + epilogue
        inputs = external_inputs(nodes, members)
        outputs = [n.outputs[0] for n in nodes if needed_outside(n, members, users, live)]
        kernels.append(GemmKernel("", nodes, node, spec, epilogue, inputs, outputs))
    return kernels
