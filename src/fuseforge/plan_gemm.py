"""plan_gemm: matrix products as generated tensor-core GEMMs with their epilogue fused.

A GEMM kernel computes one matmul/linear/bmm/addmm with float32 accuracy (three TF32
products on split operands, codegen/gemm.py) and runs the pointwise group that consumes its
result in the store of each output element, so the product is written once, already
transformed. The group is taken when it spans the product's shape, nothing outside needs a
value of it that is smaller than that shape, and the fused set reads nothing that depends
on itself. Products the generated kernel would run slower stay cuBLAS externs (the decision
log says why): matrix-vector shapes, products with too few output tiles to fill the GPU and
too narrow or shallow to split k, short ones (K < MIN_K: accuracy), and those where the kernel
form is slower than cuBLAS float32 and the fused epilogue saves too little.

How each product runs (cuBLAS, or which configuration: large or small tiles, k split how many
ways) is decided by `choose`: by the times `fuseforge tune` measured for the product on the
target GPU where tuning.py has them, else by the estimates here (`pays`, `config`, `split_for`:
measured rates, whole tiles in whole waves, the packing's traffic).
"""
from __future__ import annotations

import math
import os

from dataclasses import dataclass

from . import ops
from .errors import ConfigError
from .graph import Node, Value
from .ops.gemm import Gemm
from .plan_fusion import FusedOps, each_spec, entry_spec, epilogue_math, external_inputs, find_epilogue, needed_outside

SMS = 132                  # H100 SXM: output tiles below this leave multiprocessors idle
TINY_FLOPS = 2e8           # below this a product is launch-bound: fusing always pays
MAX_BATCH = 65535          # the batch runs on gridDim.y
# Tile configurations (codegen/gemm.py): (BM, BN, WM, WN). The large one when it still gives
# every multiprocessor a tile (on an H100 it runs on wgmma), the small one (mma.sync) else.
LARGE = (128, 128, 64, 32)
SMALL = (64, 64, 32, 32)
# Split-K (the wgmma kernel only): a product of too few large tiles to fill the GPU runs each tile
# as s blocks of K / s, their float32 partial sums added in a fixed order by a second launch that
# applies the epilogue. Factors up to SMS blocks in all, each split MIN_SPLIT_K deep at the least.
SPLITS = (2, 4, 8, 16, 32)
MIN_SPLIT_K = 256
# FUSEFORGE_GEMM: "auto" (the default) takes a product where it is measured to pay, "all"
# every product it can compute, "off" none. Measured on the H100:
# - the wgmma kernel (large tiles) packs both operands first (split into hi and lo TF32 tiles,
#   any layout: 0.15 ms for two 4096 x 4096 operands), then runs its main loop at 118-122
#   TFLOP/s: 4096^3 1.27 ms in all against cuBLAS float32's 2.74, 2.16x (bench/session12/
#   gemm_packed). `pays` weighs the packing's traffic and the tiles' padding against cuBLAS
#   float32 and the epilogue pass the fusion saves. It wants depth: with K = 64 (the product
#   bound by its stores) the earlier form lost to cuBLAS (level1/103: 0.82x torch.compile).
#   Its epilogue runs after the main loop at 8 warps per multiprocessor: two mish per element
#   (level2/063) made it 0.96x eager, where a pass of its own is cheaper; the registry's
#   `transcendentals` counts such functions (level2/079's softplus and tanh, 3, measured 1.11x
#   torch.compile, is under the limit);
# - the mma.sync kernel (small tiles, and GPUs other than the H100) runs at 0.86-0.95x cuBLAS,
#   the large tiles with a side under WGMMA_MIN_SIDE or K under WGMMA_MIN_K down to 0.82x: there
#   only the epilogue pass the fusion removes (one read and one write of the product at the
#   copy rate) can pay for it: when it costs more than GEMM_DEFICIT of the product's cuBLAS
#   time (measured 1.22x eager on level2/090), or the product is launch-bound (tiny);
# - accuracy (max error against float64 / cuBLAS float32's, 1536 x K x 1536): 0.42-1.07x on
#   normal inputs, 0.42-1.66x on uniform [0, 1) ones for K = 64..16384. Below MIN_K the split
#   operands' 22 mantissa bits show where terms have one sign (d @ d.T at K = 12: 4.8x), so
#   auto leaves shorter products to cuBLAS.
DEFAULT_MODE = "auto"
MIN_K = 64
WGMMA_MIN_SIDE, WGMMA_MIN_K = 128, 128
MAX_EPILOGUE_MATH = 4
GEMM_DEFICIT = 0.15
CUBLAS_FP32_FLOPS = 52e12  # measured float32 GEMM rate (fuseforge bench's ceilings)
WGMMA_FLOPS = 118e12       # measured: the wgmma kernel's main loop (bench/session12/gemm_packed)
COPY_BYTES_PER_S = 3.0e12  # measured copy rate, bytes read + written
PASS_MIN_S = 4e-6          # the least a kernel of its own takes: the smallest kernels `fuseforge
                           # tune` timed on the H100 took 0.004-0.005 ms (bench/session18/tune)


def large_tiles(g: Gemm) -> int:
    return g.batch * math.ceil(g.m / LARGE[0]) * math.ceil(g.n / LARGE[1])


def configs(g: Gemm) -> dict[str, tuple[tuple, int]]:
    """Every configuration the generated GEMM can run this product in, by name (as tuning.py
    stores their times): (tiles, split-K factor)."""
    out = {"large": (LARGE, 1), "small": (SMALL, 1)}
    for s in SPLITS:
        if large_tiles(g) * s <= SMS and g.k >= s * MIN_SPLIT_K:
            out[f"large_split{s}"] = (LARGE, s)
    return out


def config_name(g: Gemm, tiles: tuple, split: int) -> str:
    """The name of a configuration of configs(g)."""
    return next(n for n, c in configs(g).items() if c == (tiles, split))


def split_for(g: Gemm) -> int:
    """The estimate's split-K factor: the largest of configs' where the large tiles fill less than
    half the GPU on the wgmma kernel, else 1."""
    if large_tiles(g) >= SMS // 2 or not wgmma_shape(g):
        return 1
    return max((s for _, s in configs(g).values()), default=1)


def config(g: Gemm) -> tuple[int, int, int, int]:
    """The tile configuration of a product: the large tiles when they give every multiprocessor
    one, or at least half of them one on the wgmma kernel (a wave half full there still runs at
    59 TFLOP/s, the small tiles' mma.sync at 45-49: level1/008's 128 tiles) or k splits to fill
    it (split_for), else the small."""
    tiles = large_tiles(g)
    if tiles >= SMS or (tiles >= SMS // 2 and wgmma_shape(g)) or split_for(g) > 1:
        return LARGE
    return SMALL


def operand_layout(g: Gemm, which: str) -> tuple[bool, bool]:
    """(k inner in shared memory, 16-byte copies) for operand "a" or "b": shared memory keeps
    the dim that is contiguous in global memory inner, and 4-float copies run along it when
    every chunk of 4 is in bounds together and 16-byte aligned (the wrapper aligns the base)."""
    op, rows = (g.a, g.m) if which == "a" else (g.b, g.n)
    k_inner = op.k == 1 or op.rows != 1
    if k_inner:
        return True, op.k == 1 and g.k % 4 == 0 and op.rows % 4 == 0 and op.batch % 4 == 0
    return False, rows % 4 == 0 and op.k % 4 == 0 and op.batch % 4 == 0


def wgmma_shape(g: Gemm) -> bool:
    """Whether the product's sides and depth suit the wgmma kernel. WGMMA_MIN_K = 256 was measured
    with the kernel that split its operands in the loop; with the packed kernel 128 (attention
    scores, K = 128) measured 0.92x the time of cuBLAS on level2/088, 089
    (bench/session13/ab_next_flags_h100.json). FUSEFORGE_WGMMA_MIN_K overrides it."""
    min_k = int(os.environ.get("FUSEFORGE_WGMMA_MIN_K", WGMMA_MIN_K))
    return min(g.m, g.n) >= WGMMA_MIN_SIDE and g.k >= min_k


def on_wgmma(g: Gemm) -> bool:
    """Whether the product takes the H100 kernel (large tiles, see DEFAULT_MODE)."""
    return config(g) == LARGE and wgmma_shape(g)


PACK_K = 32   # k of a packed tile (codegen/gemm.py's BK)
MAX_PACKED_BYTES = 4 << 30   # the workspace a product's packed operands may take (8192^3: 1 GiB)


def packed_bytes(g: Gemm, tiles: tuple | None = None) -> int:
    """The workspace of a product on the large tiles (wgmma on an H100): each operand's hi and lo
    TF32 parts in packed tiles of 128 rows x 32 k (zeros past the ends), one set for an operand
    that every batch shares. 0 for the small tiles. `tiles`: the configuration (default config)."""
    if (tiles or config(g)) != LARGE:
        return 0
    tiles = (g.batch if g.a.batch else 1) * math.ceil(g.m / LARGE[0]) + \
        (g.batch if g.b.batch else 1) * math.ceil(g.n / LARGE[1])
    return tiles * math.ceil(g.k / PACK_K) * 2 * LARGE[0] * PACK_K * 4


def partial_bytes(g: Gemm, split: int) -> int:
    """The workspace of split-K's partial sums (none unsplit)."""
    return split * g.batch * g.m * g.n * 4 if split > 1 else 0


def wgmma_seconds(g: Gemm, split: int | None = None) -> float:
    """The wgmma kernel's time by the measured rates: whole 128 x 128 tiles at WGMMA_FLOPS in whole
    waves (a block a multiprocessor; a tile is `split` blocks, default split_for's), the packing
    (each operand read once, its hi and lo parts written) and the partial sums written and read."""
    bm, bn = LARGE[:2]
    split = split or split_for(g)
    blocks = large_tiles(g) * split
    waves = math.ceil(blocks / SMS)
    flops = 2 * blocks * bm * bn * math.ceil(g.k / PACK_K / split) * PACK_K * (waves * SMS / blocks)
    return flops / WGMMA_FLOPS + (1.5 * packed_bytes(g, LARGE) + 2 * partial_bytes(g, split)) / COPY_BYTES_PER_S


@dataclass(eq=False)
class GemmKernel(FusedOps):
    name: str
    nodes: list[Node]        # the product, then its epilogue (graph order)
    node: Node
    gemm: Gemm
    epilogue: list[Node]
    inputs: list[Value]
    outputs: list[Value]
    tf32: bool = False       # one TF32 product (--tf32, opt-in: looser than eager's float32)
    tiles: tuple = LARGE     # the tile configuration (config's estimate, or measured: choose)
    split: int = 1           # split-K factor (the wgmma kernel's; split_for's estimate, or measured)


def add_gemm_option(parser) -> None:
    """The command-line spellings of FUSEFORGE_GEMM and FUSEFORGE_TF32 (cli.py sets the variables,
    so worker processes see them too)."""
    parser.add_argument("--gemm", choices=["off", "auto", "all"], default=None,
                        help="generated 3xTF32 GEMMs: auto (default: where measured to pay), all "
                             "(every product), off (cuBLAS); same as FUSEFORGE_GEMM")
    parser.add_argument("--tf32", action="store_true",
                        help="opt-in, looser than eager: the generated GEMMs multiply in plain TF32 (one product "
                             "of the operands rounded to TF32, float32 sums) instead of 3xTF32; same as "
                             "FUSEFORGE_TF32=1")


def tf32_mode() -> bool:
    """FUSEFORGE_TF32=1: the generated GEMMs take one TF32 product (about torch's allow_tf32
    accuracy) instead of three. The products taken stay those of the default mode (the planner's
    rules and estimates are the 3xTF32 kernel's), so the two modes differ only in precision."""
    v = os.environ.get("FUSEFORGE_TF32", "0")
    if v not in ("0", "1"):
        raise ConfigError(f"FUSEFORGE_TF32={v!r}: expected 0 or 1")
    return v == "1"


def mode() -> str:
    """FUSEFORGE_GEMM: "auto" (the default, also "1": where it pays), "all", "off" (also "0")."""
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
        return "cuBLAS float32 (generated GEMMs switched off: FUSEFORGE_GEMM=off)"
    if spec.batch > MAX_BATCH:
        return f"a batch of {spec.batch} (the generated GEMM takes up to {MAX_BATCH})"
    if min(spec.m, spec.n) == 1:
        return "a matrix-vector product (cuBLAS gemv)"
    tiles = spec.batch * math.ceil(spec.m / SMALL[0]) * math.ceil(spec.n / SMALL[1])
    if tiles < SMS // 2 and spec.flops > TINY_FLOPS and split_for(spec) == 1:
        return (f"{tiles} output tiles for {spec.flops / 1e9:.1f} GFLOP: too few to fill the GPU, and too "
                f"narrow or shallow to split k")
    if (packed := packed_bytes(spec)) > MAX_PACKED_BYTES:
        return (f"cuBLAS float32 (its operands packed for the wgmma kernel would take "
                f"{packed / 2**30:.1f} GiB, more than {MAX_PACKED_BYTES / 2**30:.0f})")
    return spec


def _short(spec: Gemm) -> str | None:
    if spec.k < MIN_K:
        return (f"cuBLAS float32 (K = {spec.k} < {MIN_K}: the split operands' error can reach 4.8x "
                f"cuBLAS float32's on short products)")
    return None


def _heavy(epilogue) -> str | None:
    """Why an epilogue stays out of the wgmma kernel: too many transcendental functions."""
    if epilogue_math(epilogue) > MAX_EPILOGUE_MATH:
        return (f"cuBLAS float32 and a pass of its own for the epilogue ({epilogue_math(epilogue)} "
                f"transcendental functions per element, more than {MAX_EPILOGUE_MATH}: slower inside the GEMM)")
    return None


def epilogue_pass_s(node: Node, epilogue) -> float:
    """What fusing the epilogue saves: its pass of its own over the product (a read and a write at
    the copy rate, a kernel's least time at the least)."""
    return max(PASS_MIN_S, 2 * node.outputs[0].type.numel * 4 / COPY_BYTES_PER_S) if epilogue else 0.0


def pays(spec: Gemm, node: Node, epilogue) -> str | None:
    """None when the generated GEMM should run this product, else why cuBLAS does."""
    if mode() == "all":
        return None
    if why := _short(spec):
        return why
    if spec.flops <= TINY_FLOPS:
        return None
    gemm_s = spec.flops / CUBLAS_FP32_FLOPS
    saved_s = epilogue_pass_s(node, epilogue)
    if on_wgmma(spec):
        if why := _heavy(epilogue):
            return why
        ours = wgmma_seconds(spec)
        if ours < gemm_s + saved_s:
            return None
        return (f"cuBLAS float32 (the wgmma kernel's estimate, packing the operands included, "
                f"{1e3 * ours:.3f} ms against {1e3 * (gemm_s + saved_s):.3f})")
    if saved_s > GEMM_DEFICIT * gemm_s:
        return None
    return (f"cuBLAS float32 (in this form, small tiles or a side under {WGMMA_MIN_SIDE} or K under "
            f"{WGMMA_MIN_K}, the generated GEMM runs 0.82-0.95x its speed, and the epilogue pass it "
            f"would save is {100 * saved_s / gemm_s:.0f}% of the product's time)")


def choose(spec: Gemm, node: Node, epilogue, tf32: bool) -> tuple[str | None, tuple, int, str]:
    """(why cuBLAS runs the product or None, the tiles, the split-K factor, how it was decided): by
    the times tuning.py measured for this product on the target GPU when it has them, else by
    `pays`, `config` and `split_for`'s estimates. The accuracy and epilogue-math rules hold either
    way: a product timed alone says nothing about them."""
    from . import tuning
    measured = tuning.lookup(spec, tf32)
    ours = {name: measured[name] for name, (tiles, _) in configs(spec).items()
            if measured and name in measured and packed_bytes(spec, tiles) <= MAX_PACKED_BYTES}
    if not ours:
        tiles = config(spec)
        return pays(spec, node, epilogue), tiles, split_for(spec) if tiles == LARGE else 1, "estimated"
    best = min(ours, key=ours.get)
    tiles, split = configs(spec)[best]
    times = ", ".join(f"{n} {ms:.3f} ms" for n, ms in ours.items())
    how = f"measured on {measured['gpu']}: {times}, cuBLAS float32 {measured['cublas']:.3f} ms"
    if mode() != "all":
        if why := _short(spec) or (tiles == LARGE and wgmma_shape(spec) and _heavy(epilogue)):
            return why, tiles, split, how
        saved_ms = 1e3 * epilogue_pass_s(node, epilogue)
        if ours[best] >= measured["cublas"] + saved_ms:
            return f"cuBLAS float32 ({how}; the epilogue pass it would save {saved_ms:.3f} ms)", tiles, split, how
    return None, tiles, split, how


def form_gemm_kernels(graph, groups, group_of, closed, users, live, decisions,
                      why_extern: dict) -> list[GemmKernel]:
    """A GEMM kernel for every product the generated GEMM takes; the pointwise group it
    absorbs as its epilogue is removed from `groups`."""
    kernels, tf32 = [], tf32_mode()
    for node, spec in each_spec(graph, ops.GEMM, gemm_of, why_extern, decisions):
        members = {node}
        group = find_epilogue(node.outputs[0], members, groups, group_of, closed, users, live)
        why, tiles, split, how = choose(spec, node, group, tf32)
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
        kernels.append(GemmKernel("", nodes, node, spec, epilogue, inputs, outputs, tf32, tiles, split))
        if how != "estimated" or split > 1:
            decisions.append(f"{node.name}: {config_name(spec, tiles, split)}, {how}")
        if tf32:
            decisions.append(f"{node.name}: one TF32 product (FUSEFORGE_TF32=1: opt-in, looser than eager's float32)")
    return kernels
