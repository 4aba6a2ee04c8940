"""plan_conv: 2D and 3D convolutions as generated implicit-GEMM kernels with their epilogue fused.

A conv kernel computes one aten.conv2d or aten.conv3d (its bias already moved into the pointwise
ops after it, ops/convs.py, and taken back into its sums where that add alone reads the result:
bias_add) on the H100's TF32 tensor cores and runs the pointwise group that consumes its result
in the store of each output element, written in the graph's own layout (NCHW): the
convolution's result is never written channels-last and read back, and the output needs no
conversion (codegen/conv.py has the kernel). Numerics: cuDNN's TF32 convolution, which eager
runs by default, rounds both operands to TF32 (to nearest) and sums in float32 (measured on an
H100: it matches float64 convolutions of the rounded operands to 5.6e-5 of the largest value,
truncated operands to 5.5e-4, bench/session15/igemm/cudnn_rounding_h100.txt); the kernel rounds
both the same way.

Measured on an H100 (bench/session15/igemm, the bundled example's convolution with its
epilogue, NCHW in and out): 1.53 ms with the input converted to channels-last and rounded by the
kernel that reads it, against cuDNN's 1.71 for the convolution alone (its output channels-last,
the bias added by a second pass) and torch.compile's 1.96 for the whole model. In the models
(bench/session16/ab_conv_lean_h100.json, new / old: every convolution with a pointwise epilogue
generated, against cuDNN and a pass of its own) it wins on 14 of 17, so the plan takes it except
where those measurements say:
- more than 32 input channels, not a multiple of 32, through a window: each tap's channels padded
  to whole k-slices of 32 (36 do the work of 64); not measured;
- a result another convolution reads (VGG's block, 1.14: its first convolution generated; the
  second reads the result channels-last, which the old plan's epilogue wrote at no cost, where
  the generated convolution writes NCHW and the second converts it);
- an epilogue of more than MAX_EPILOGUE_MATH transcendental functions an element (the registry's
  count): it runs after the main loop at three blocks a multiprocessor, where a pass of its own
  hides it behind memory (two mish, 6: level2/007 1.04; one, 3: 018 0.96).
The rest: 32 input channels level2/004, 006, 010, 012, 015, 017 0.77-0.90, level1/022, 024 0.84,
0.86; 1x1 level1/027 0.90, level2/020 0.93. 64 input channels through a window into 64 output
channels (level2/024) measured 1.09 then and was left to cuDNN; since its epilogue loads a chunk of
elements' inputs before their stores (codegen/conv.py ffconv::epilogue; it was one load's latency
an element), 0.897 on an H200 (bench/session34/epi/ab_024_cudnn.log; 0.910 in chunk/ab_rule.log,
where level1/033's 64 -> 32 took 0.890), so it is generated too.
A row kernel over the result's channels (min, max, softmax over dim 1) runs in the epilogue
instead where a tile holds a pixel's channels (fold_pixel_rows; the result is never written).
FUSEFORGE_CONV=off (or 0) turns generated convolutions off, =all takes every one the kernel can compute
(for measuring; the numerics rule below still holds). A 2D convolution whose result a norm over
its pixels reads twice, too large for L2 between the reads, is generated without an epilogue
(bare(): an instance norm's; FUSEFORGE_CONV_BARE=0 turns that off, =norms takes batch and group
norms too, =all means and smaller results too).

Numerics, where eager runs float32: cuDNN's heuristics pick a float32 algorithm for some shapes
even though TF32 is allowed, mostly with 16 input channels (both layouts: 32 x 16 x 16 x 16 into
128 channels, 8 x 16 x 32 x 32 into 128); with 32 or more every one of 222 shapes ran TF32 in at
least one layout (bench/session16/eager_tf32_h100.txt). The kernel takes 32 or more, so it is no
looser than eager in the layout eager is loosest in, the test policy of every convolution
(tests/test_layout._no_looser_than_eager). 3D (bench/session18/final/eager_tf32_3d_h100.txt, 99
shapes): with 16 or more input channels through a window every shape ran TF32 in both layouts;
with 8, two ran float32 in NCDHW; through a 1x1x1 window many ran float32. The kernel takes 16 or
more through a window; a k-slice of 32 then holds 32 / C taps where C divides 32.

3D, measured on an H100 (bench/session19, A/B against cuDNN, which runs NCDHW as NDHWC between
two conversions of its own): every one of the suite's 12 (16 channels into 32, 3x3x3 and
3x5x7) 0.62-0.80 of the time, those without a pointwise epilogue (a norm or softmax reads the
result) too, so a 3D one is generated either way. Its main loop (0.27 ms on level2/033, about
5x the tensor cores' and the input's floor) gathers each input 27 times from L2 (1.5 GB); what
did not make it faster: the copies through L1, a larger L1, 2 or 4 stages (0.99-1.14x the time,
bench/session19/second, third), nor the halo kernel below, which reads the input about once
(0.99-1.19x on five 3D problems, 1.43-1.59x on three 2D, bench/session19/closing/ab_halo.json).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, replace

import torch

from .errors import ConfigError
from .graph import Node, Value
from .layout import CHANNELS_LAST_CONVS, contiguous_strides, is_channels_last
from .ops.windows import per_dim
from .plan_fusion import FusedOps, epilogue_math, external_inputs, find_epilogue, needed_outside
from .plan_rows import ELEM

MIN_IN_CHANNELS = 32    # fewer: eager's cuDNN may run float32 (the numerics above)
MIN_IN_CHANNELS_3D = 16  # 3D, through a window (the numerics above)
MIN_OUT_CHANNELS = 16
MAX_EPILOGUE_MATH = 4   # transcendental functions an element (the speed rules above)
# Measured on an H100 with every convolution generated (bench/session15/ab_conv_h100.json, new /
# old): those without a pointwise epilogue (a row or window kernel, or a batch norm, reads the
# result) 1.01-1.35 (level2/001 1.006, 016 1.124; VGG's and U-Net's blocks 1.350, 1.215): cuDNN's
# channels-last output, read in place by those kernels, stays.
NO_EPILOGUE = ("cuDNN: no pointwise epilogue to fuse (its readers read cuDNN's channels-last result in place: "
               "measured faster, bench/session15/ab_conv_h100.json)")


@dataclass
class Conv:
    x: Value                 # [N, C, H, W] or [N, C, D, H, W], contiguous
    w: Value                 # [K, C, R, S] or [K, C, KD, R, S], contiguous
    n: int
    c: int
    h: int
    w_: int
    k: int
    r: int
    s: int
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    oh: int
    ow: int
    # a 3D convolution's depth: the input's, the window's, the output's, and its stride, padding,
    # dilation (a 2D convolution is one of depth 1)
    d: int = 1
    kd: int = 1
    od: int = 1
    depth: tuple[int, int, int] = (1, 0, 1)

    @property
    def dims(self) -> int:
        return 3 if self.x.type.ndim == 5 else 2

    @property
    def taps(self) -> int:
        return self.kd * self.r * self.s

    @property
    def cp(self) -> int:
        """Channels a tap takes of the packed k: C where it divides a 32-channel k-slice (a slice
        then holds 32 / C taps), else C rounded up to whole slices."""
        return self.c if 32 % self.c == 0 else 32 * math.ceil(self.c / 32)

    @property
    def flops(self) -> int:
        return 2 * self.n * self.od * self.oh * self.ow * self.k * self.c * self.taps

    def describe(self) -> str:
        if self.dims == 2:
            return (f"[{self.n}, {self.c}, {self.h}, {self.w_}] * [{self.k}, {self.c}, {self.r}, {self.s}] "
                    f"stride {list(self.stride)} padding {list(self.padding)} dilation {list(self.dilation)}")
        (sd, pd, dd), (sh, sw), (ph, pw), (dh, dw) = self.depth, self.stride, self.padding, self.dilation
        return (f"[{self.n}, {self.c}, {self.d}, {self.h}, {self.w_}] * [{self.k}, {self.c}, {self.kd}, {self.r}, "
                f"{self.s}] stride {[sd, sh, sw]} padding {[pd, ph, pw]} dilation {[dd, dh, dw]}")


@dataclass(eq=False)
class ConvKernel(FusedOps):
    name: str
    nodes: list[Node]        # the convolution, then its epilogue (graph order)
    node: Node
    conv: Conv
    epilogue: list[Node]
    inputs: list[Value]
    outputs: list[Value]
    rows: object = None      # a RowKernel over each pixel's channels run in the epilogue instead
    fed: Value | None = None  # ... the value it reads the convolution's result as (fold_pixel_rows)
    bias: Value | None = None  # one value a channel its sums start at (bias_add: the add is not in the epilogue)

    @property
    def result(self) -> Value:
        """The value the accumulators hold once summed: the convolution's, or its bias add's (bias_add)."""
        y = self.node.outputs[0]
        return next((n.outputs[0] for n in self.nodes if self.bias is not None and y in n.tensor_inputs()), y)


CONV2D = "aten.conv2d.default"
CONV3D = "aten.conv3d.default"
CONVS = (CONV2D, CONV3D)


def mode() -> str:
    """FUSEFORGE_CONV, as FUSEFORGE_GEMM: auto (default, the measured rules), off (or 0), all (every
    convolution the kernel computes)."""
    m = os.environ.get("FUSEFORGE_CONV", "") or "auto"
    m = {"0": "off", "1": "auto"}.get(m, m)
    if m not in ("off", "auto", "all"):
        raise ConfigError(f"FUSEFORGE_CONV={m!r}: expected off, auto or all")
    return m


def decides(node: Node) -> bool:
    """Whether form_conv_kernels decides this node (a 2D or 3D convolution, generated ones switched on)."""
    return node.target in CONVS and mode() != "off"


def conv_of(node: Node, epilogue=None, feeds_conv: bool = False, writes_result: bool = True) -> Conv | str:
    """The convolution the generated kernel computes for this node (the rules for its pointwise
    `epilogue` group applied, and whether another convolution reads its result, unless mode() is
    "all"), or why not. The layout comes last: after the layout pass made a result channels-last,
    the log still says why it stayed cuDNN's."""
    x, w, y = node.arg("input"), node.arg("weight"), node.outputs[0]
    dims = 3 if node.target == CONV3D else 2
    if not torch.backends.cudnn.allow_tf32:
        return "TF32 not allowed (torch.backends.cudnn.allow_tf32 is off: cuDNN computes it in float32)"
    if isinstance(node.arg("bias"), Value):
        return "a bias not moved out (ops/convs.py)"
    if any(v.type.dtype != torch.float32 for v in (x, w, y)):
        return "not float32"
    if x.type.ndim != dims + 2 or w.type.ndim != dims + 2:
        return "an unbatched input"
    if int(node.arg("groups")) != 1:
        return "a grouped convolution"
    n, c = x.type.shape[:2]
    k = w.type.shape[0]
    taps = math.prod(w.type.shape[2:])
    if dims == 2 and (c % 4 or c < MIN_IN_CHANNELS):
        return (f"{c} input channels (the kernel reads them 4 at a time, and {MIN_IN_CHANNELS} or more: with fewer "
                "eager's cuDNN may run float32)")
    if dims == 3 and (c % 4 or c < MIN_IN_CHANNELS_3D or taps == 1):
        return (f"{c} input channels through {taps} tap(s) (the kernel reads them 4 at a time; eager's cuDNN runs "
                f"TF32 where {MIN_IN_CHANNELS_3D} or more go through a window, may run float32 otherwise)")
    if k < MIN_OUT_CHANNELS:
        return f"{k} output channels (fewer than {MIN_OUT_CHANNELS})"
    pixels = math.prod(y.type.shape[2:])
    if max(x.type.numel, y.type.numel, n * pixels * 128) >= 2**31:
        return "more than 2^31 elements"
    stride, padding, dilation = (per_dim(node.arg(a), dims) for a in ("stride", "padding", "dilation"))
    depth = {}
    if dims == 3:
        depth = dict(d=x.type.shape[2], kd=w.type.shape[2], od=y.type.shape[2],
                     depth=(stride[0], padding[0], dilation[0]))
    conv = Conv(x, w, n, c, *x.type.shape[-2:], k, *w.type.shape[-2:], stride[-2:], padding[-2:], dilation[-2:],
                *y.type.shape[-2:], **depth)
    if mode() != "all" and (why := slower(conv, epilogue, feeds_conv)):
        return why
    for v, what in ((x, "input"), (w, "weight"), (y, "result"))[:3 if writes_result else 2]:
        if v.type.strides != contiguous_strides(v.type.shape):
            return f"a {what} that is not contiguous NC{'D' * (dims == 3)}HW"
    return conv


def slower(conv: Conv, epilogue, feeds_conv: bool) -> str | None:
    """Why cuDNN and a pass of its own measured faster for this convolution and epilogue (the
    rules in the module's docstring), or None."""
    if feeds_conv:
        return ("its result read by another convolution (written channels-last for it where computed; "
                "the generated convolution writes NCHW: VGG's block 1.14x, bench/session16/ab_conv_lean_h100.json)")
    if conv.dims == 2 and conv.c > 32 and conv.c % 32 and conv.r * conv.s > 1:
        return (f"{conv.c} input channels through a {conv.r}x{conv.s} window (each tap's padded to {conv.cp}, "
                "whole k-slices of 32: that much more work; not measured, where whole slices, 64 -> 64, took "
                "1.09x cuDNN's time in session 16 and 0.90x since, bench/session34/epi)")
    math_ = epilogue_math(epilogue)
    if math_ > MAX_EPILOGUE_MATH:
        return (f"an epilogue of {math_} transcendental functions an element (more than {MAX_EPILOGUE_MATH}: "
                "slower inside the convolution, bench/session16/ab_conv_lean_h100.json)")
    return None


def bare(node: Node, users, row_groups, group_of) -> str | None:
    """Why a convolution no pointwise group consumes is generated (its result written NC(D)HW for
    its readers), or None: a 3D one always; a 2D one whose result the model returns as it is, where
    cuDNN's channels-last result is converted back (level1/028, 0.809 with its 'same' padding spelled
    out, bench/session25/padding); and a 2D one where a row group reducing over its pixels (a norm's
    statistics, a mean) reads its result and every other reader is one too or a pointwise group (the
    norm's normalize), and, unless FUSEFORGE_CONV_BARE=all, where the result is read twice (a
    normalize after the statistics) and neither stays in L2 between the two reads nor has images too
    small to hold on chip (RESIDENT_MIN_BYTES, RESIDENT_MIN_RUN of codegen/rows.py). Then the row
    kernel reads each NCHW row whole and once, cached in registers or held by the blocks that take
    it, where over cuDNN's channels-last result the statistics and the normalize each read it, strided.
    Measured on an H100 (bench/session25/bare, new / old, FUSEFORGE_CONV_BARE=all): level2/005
    0.841 (instance norm: statistics 0.113 ms and normalize 0.189 become one kernel of 0.174; the
    generated convolution 0.232 against cuDNN's 0.195), 001 0.957 (batch norm), 002 0.997 (group
    norm); slower where read once (021's mean 1.095, 016 1.089: only the convolution's cost
    left) or where the result fits L2 (the networks' batch norms over 56 x 56 images, 1.01-1.34,
    level3/005, 006, 007, 008, 017, 019: their two passes read L2 and their next convolutions
    want the channels-last layout back). FUSEFORGE_CONV_BARE=0 generates none (2D). On the H200
    cuDNN's measured faster for 001 and 002 (bench/session27/ab_conv_off: 0.948, 0.936 of the bare
    convolution's times; 005 1.132 slower; bench/session28/ab_planes: 0.948, 0.935): so the rule
    holds only where every such row is one image's channel (an instance norm's; planes), and
    FUSEFORGE_CONV_BARE=norms takes the batch and group norms too (the H100's rule).
    Not where rows over the channels alone read it: those run in a generated convolution's epilogue
    over a channels-last result (fold_pixel_rows)."""
    if node.target == CONV3D:
        return "3D (cuDNN runs it channels-last between two conversions of its own)"
    flag = os.environ.get("FUSEFORGE_CONV_BARE", "") or "planes"
    if flag not in ("0", "planes", "norms", "all"):
        raise ConfigError(f"FUSEFORGE_CONV_BARE={flag!r}: expected 0, planes, norms or all")
    if flag == "0":
        return None
    from .codegen.rows import RESIDENT_MIN_BYTES, RESIDENT_MIN_RUN   # (codegen imports the planner)
    y, over_pixels, twice, planes = node.outputs[0], False, False, True
    readers = users.get(y, [])
    if not readers:
        return "the model's result as it is (cuDNN's channels-last result would be converted back)"
    for u in readers:
        rg = next((g for g in row_groups if u in g.nodes), None)
        if rg is None and (u not in group_of or u.target == "aten.permute.default"):
            return None
        if rg is None:
            twice = True   # (a pointwise group: the normalize)
        else:
            if not rg.view and tuple(rg.frame) == tuple(y.type.shape) and set(rg.axes) <= {1}:
                return None   # (rows over the channels alone)
            over_pixels = True
            twice |= any(rg.phase.get(n.outputs[0]) == ELEM for n in rg.recipes)   # (normalized inside)
            planes &= not rg.view and set(rg.axes) == set(range(2, len(y.type.shape)))
    if not over_pixels:
        return None
    if flag == "all":
        return "rows over its pixels read it (FUSEFORGE_CONV_BARE=all)"
    if flag == "planes" and not planes:
        return None
    large = y.type.numel * y.type.dtype.itemsize >= RESIDENT_MIN_BYTES
    if twice and large and math.prod(y.type.shape[2:]) >= RESIDENT_MIN_RUN:
        return "a norm over its pixels reads it twice, too large for L2 between the reads: read once as NCHW rows"
    return None


def bias_add(y: Value, nodes, users, live) -> tuple[Node, Value] | None:
    """(the add, the bias) where the convolution's result y has one reader, an add among `nodes` of
    one float32 value per output channel from outside them (its bias, which ops/convs.py moved out
    of the convolution): the kernel folds it into its sums, each channel's accumulators starting at
    its bias instead of 0, a load a channel where the epilogue loaded the bias at every element and
    added it. The same float32 sum of the products and the bias, the bias first instead of last."""
    readers = users.get(y, [])
    if y in live or len(readers) != 1 or readers[0] not in nodes:
        return None
    add = readers[0]
    if add.target != "aten.add.Tensor" or add.arg("alpha") != 1:
        return None
    b = {add.arg("self"): add.arg("other"), add.arg("other"): add.arg("self")}.get(y)
    if not isinstance(b, Value) or b is y or b.producer in nodes or b.type.dtype != torch.float32 or \
            add.outputs[0].type.dtype != torch.float32 or add.outputs[0].type.shape != y.type.shape:
        return None
    shape = (1,) * (y.type.ndim - b.type.ndim) + tuple(b.type.shape)   # (right-aligned over y's)
    if not y.type.ndim - 1 <= b.type.ndim <= y.type.ndim or shape[1] != y.type.shape[1] or \
            any(e != 1 for e in shape[:1] + shape[2:]):
        return None
    return add, b


def form_conv_kernels(graph, groups, group_of, closed, users, live, decisions, why_extern: dict,
                      taken=(), row_groups=()) -> list[ConvKernel]:
    """A conv kernel for every 2D or 3D convolution the generated kernel takes (mode(), the rules
    above) and whose result a pointwise group consumes; that group, its epilogue, is removed from
    `groups`. Some are generated without an epilogue too, their results written NC(D)HW (bare():
    every 3D one, and 2D ones where that measured faster); the decision log says why."""
    if mode() == "off":
        return []
    kernels = []
    for node in graph.nodes:
        if node.target not in CONVS or node in taken:   # (taken: a depthwise one by a window kernel)
            continue
        members = {node}
        group = find_epilogue(node.outputs[0], members, groups, group_of, closed, users, live)
        results = [node] + (group.nodes if group is not None else [])
        feeds_conv = any(u.target in CHANNELS_LAST_CONVS for n in results for u in users.get(n.outputs[0], []))
        why_bare = bare(node, users, row_groups, group_of) if group is None else None
        spec = conv_of(node, group, feeds_conv) if group is not None or why_bare else NO_EPILOGUE
        if isinstance(spec, str):
            why_extern[node] = spec if spec is NO_EPILOGUE else f"cuDNN: {spec}"
            decisions.append(f"{node.name} ({node.target}): not a generated convolution, {why_extern[node]}")
            continue
        epilogue = list(group.nodes) if group is not None else []
        if group is not None:
            members |= set(group.nodes)
            groups.remove(group)
            decisions.append(f"{node.name}: pointwise group {epilogue[0].name}… fused into its epilogue")
        else:
            decisions.append(f"{node.name}: generated without an epilogue, {why_bare}")
        nodes = [node] + epilogue
        outputs = [m.outputs[0] for m in nodes if needed_outside(m, members, users, live)]
        folded = bias_add(node.outputs[0], epilogue, users, live)
        if folded:
            epilogue.remove(folded[0])
            decisions.append(f"{node.name}: its sums start at {folded[1].name} (the add {folded[0].name} folded in)")
        kernels.append(ConvKernel("", nodes, node, spec, epilogue, external_inputs(nodes, members), outputs,
                                  bias=folded[1] if folded else None))
    return kernels


def stages(conv: Conv) -> int:
    """k-slices in flight (FUSEFORGE_CONV_STAGES, default 3; for measuring: 2 lets 4 blocks share a
    multiprocessor instead of 3, measured 0.91-1.04x on six problems, bench/session17/second; on six
    3D problems 1.005-1.034x, bench/session19/third; 4: 1.02-1.12x, bench/session19/second)."""
    n = os.environ.get("FUSEFORGE_CONV_STAGES", "") or "3"
    if n not in ("2", "3", "4"):
        raise ConfigError(f"FUSEFORGE_CONV_STAGES={n!r}: expected 2, 3 or 4")
    return int(n)


def nchw_input(conv: Conv) -> bool:
    """Whether the kernel reads its input NCHW as it is (4-byte copies, rounded to TF32 in shared
    memory) instead of a rounded channels-last copy made first (a pass over the input: 0.091 of
    level2/006's 0.368 ms). Measured on an H100 (bench/session17/fifth/ab_nchw_in_h100.json, NCHW /
    converted): a 1x1 convolution of stride 1 (its pixels' channels are runs of 128 bytes a warp,
    read once) 0.80 (level1/027); through a 3x3 window, which reads each input 9 times at 4 bytes
    a copy, 1.20-1.87 (12 problems). FUSEFORGE_CONV_NCHW_IN=1 takes it for every convolution of
    whole 32-channel k-slices, =0 for none (measuring)."""
    forced = os.environ.get("FUSEFORGE_CONV_NCHW_IN", "")
    if forced not in ("", "0", "1"):
        raise ConfigError(f"FUSEFORGE_CONV_NCHW_IN={forced!r}: expected 0 or 1")
    if conv.cp < 32:   # (a warp reads a channel quad of 32 pixels at one tap)
        return False
    if forced:
        return forced == "1"
    return conv.taps == 1 and conv.stride == (1, 1) and conv.padding == (0, 0) and conv.depth[:2] == (1, 0)


HALO_SMEM = 226 * 1024   # the halo kernel's shared memory at most (the H100: 227 KB a block)


def staged_store(k: "ConvKernel") -> bool:
    """Whether the kernel's results go through shared memory to be stored a channel's 32
    consecutive pixels a warp instruction, instead of each thread storing its accumulators (a
    warp's store: 8 pixels of 4 channels): where the kernel stores a 2D convolution alone (no
    pointwise epilogue, no row function; 3D not measured). Measured on an H200 (staged / not,
    bench/session33/staged2): without an epilogue level1/021 0.957, 022 0.989, 023 0.996, 024
    0.981, 028 0.991; with one level2/004 1.020, and level2/024 1.060 (its convolution generated:
    swish, + input). FUSEFORGE_CONV_STAGED=0 turns it off, =1 takes it for every kernel without a
    row function (measuring)."""
    forced = os.environ.get("FUSEFORGE_CONV_STAGED", "")
    if forced not in ("", "0", "1"):
        raise ConfigError(f"FUSEFORGE_CONV_STAGED={forced!r}: expected 0 or 1")
    if forced or k.rows:
        return forced == "1" and not k.rows
    return not k.epilogue and k.conv.dims == 2


def tma_input(conv: Conv) -> bool:
    """Whether the kernel's A slices come by the copy engine (a TMA in im2col mode: one instruction
    a slice gathers the tile's 128 pixels at the slice's tap, zeros in the padding and past the
    channels) instead of every thread's 16-byte copies. 2D, whole 32-channel k-slices of the
    channels-last copy, which TMA reads at 16-byte strides (channels a multiple of 4), within its
    bounding box's limits (corners -128..127, strides up to 8). Measured on an H200 (im2col / every
    thread's copies, bench/session33/tma): level1/021 0.913, 022 0.976, 023 0.968, 024 0.949, 028
    0.991, level2/004 0.977, 022 0.926, 023 0.885; with that, level2/024's convolution generated
    with its epilogue takes 1.11x cuDNN's and the epilogue's pass (1.19x before). 3D (a rank-5 map)
    is not done yet. FUSEFORGE_CONV_TMA=0 turns it off (measuring)."""
    forced = os.environ.get("FUSEFORGE_CONV_TMA", "")
    if forced not in ("", "0", "1"):
        raise ConfigError(f"FUSEFORGE_CONV_TMA={forced!r}: expected 0 or 1")
    if forced == "0" or conv.dims != 2 or conv.cp < 32 or conv.c % 4 or nchw_input(conv) or halo(conv):
        return False
    corners = [-p for p in conv.padding] + [p - (k - 1) * d for p, k, d in
                                            zip(conv.padding, (conv.r, conv.s), conv.dilation)]
    return all(-128 <= c <= 127 for c in corners) and max(conv.stride) <= 8


def halo(conv: Conv, rows: bool = False) -> tuple[int, int, int] | None:
    """(WH, HR, HPS) of the halo kernel (codegen/conv.py) where FUSEFORGE_CONV_HALO=1 and it applies:
    stride 1 in rows and columns, channels a multiple of 8, no row function, its shared memory (HPS
    pixels of each channel quad, the channel tile's weights) within HALO_SMEM. WH: the pixels of a
    row (the input's width and padding); HR: the rows of each plane a tile of 128 virtual pixels
    reads; HPS: the pixels of each channel quad a tile's halo holds (every plane's rows, and the
    last tap's overhang). Off by default: correct (the GPU tests), but measured 0.99-1.19x the
    implicit GEMM's time on five 3D problems and 1.43-1.59x on three 2D ones (bench/session19/
    closing/ab_halo.json): a block copies its halo, then multiplies, then stores, one after the
    other, two blocks a multiprocessor; the next step is to overlap them (two halos in flight)."""
    forced = os.environ.get("FUSEFORGE_CONV_HALO", "")
    if forced not in ("", "0", "1"):
        raise ConfigError(f"FUSEFORGE_CONV_HALO={forced!r}: expected 0 or 1")
    if forced != "1" or rows or conv.stride != (1, 1) or conv.c % 8 or nchw_input(conv):
        return None
    wh = conv.w_ + 2 * conv.padding[1]
    spans = max((v0 + 127) // wh - v0 // wh + 1 for v0 in range(0, conv.oh * wh, 128))
    hr = spans + (conv.r - 1) * conv.dilation[0]
    hps = conv.kd * hr * wh + (conv.s - 1) * conv.dilation[1]
    bn = tiles(conv)[0]
    if (conv.c * hps + conv.taps * conv.c * bn) * 4 > HALO_SMEM:
        return None
    return wh, hr, hps


def tiles(conv: Conv) -> tuple[int, int]:
    """(output channels a block, k-slices of 32 in all: each tap's channels padded to conv.cp)."""
    bn = 32 if conv.k <= 32 else 64 if conv.k <= 64 else 128
    return bn, math.ceil(conv.taps * conv.cp / 32)


MAX_PIXEL_ROW = 128   # channels a tile holds (codegen/conv.py: 128 a block at most)


def fold_pixel_rows(kernels: list, closed, users, live, decisions, why_extern: dict) -> list:
    """A row kernel that reduces over the channels of a cuDNN convolution's result (min, max,
    softmax over dim 1), read as rows of a pixel's channels, runs in the generated convolution's
    epilogue: a tile holds every channel of its pixels, the quad's registers a pixel's row, and
    the result is never written. The kernel reads nothing else the convolution feeds, the rows
    are whole (not split), and the convolution passes conv_of's rules (but the count of
    transcendental functions, measured for pointwise epilogues only). Measured on an H100
    (bench/session17/first/ab_rows_h100.json, new / old): level2/003 0.77, 011 0.77, 023 0.79,
    022 0.92; a layer norm (019) 1.03-1.13, so a Welford stage keeps cuDNN and a row kernel."""
    from .plan_rows import RowKernel
    if mode() == "off":
        return kernels
    out = list(kernels)
    for rk in [k for k in kernels if isinstance(k, RowKernel)]:
        found = _pixel_rows_of(rk, users, live)
        if isinstance(found, str):
            continue
        node, fed, views = found
        spec = conv_of(node, None, False, writes_result=False)
        members = {node, *views, *rk.nodes}
        if isinstance(spec, str) or not closed(members):
            continue
        x, w = node.arg("input"), node.arg("weight")
        inputs = list(dict.fromkeys([x, w] + [v for v in rk.inputs if v is not fed]))
        nodes, row = [node] + views + rk.nodes, rk
        folded = None if views else bias_add(fed, rk.nodes, users, live)
        if folded:   # the row kernel reads the add's result from the accumulators
            add, b = folded
            summed = add.outputs[0]
            read = any(b in n.tensor_inputs() for n in rk.nodes if n is not add)
            row = replace(rk, nodes=[n for n in rk.nodes if n is not add],
                          strides={**rk.strides, summed: rk.strides[fed]},
                          inputs=[summed if v is fed else v for v in rk.inputs if v is not b or read])
            fed = summed
            decisions.append(f"{node.name}: its sums start at {b.name} (the add {add.name} folded in)")
        kernel = ConvKernel("", nodes, node, spec, [], inputs, list(rk.outputs), row, fed,
                            bias=folded[1] if folded else None)
        out[out.index(rk)] = kernel
        why_extern.pop(node, None)
        decisions.append(f"{node.name}: its channels' row kernel ({rk.summary()}) fused into its epilogue: a tile "
                         f"holds a pixel's {rk.length} channels, the result is never written")
    return out


def _pixel_rows_of(rk, users, live):
    """(the convolution, the value rk reads it as, the permutes between) where rk's rows are the
    pixels of a 2D convolution's channels-last result and its elements their channels (memory
    offset o * K + r), nothing else reads that result, and a tile holds a row; else why not."""
    from .plan_rows import ELEM
    from .ops.rows import Stage
    if rk.splits != 1 or rk.length > MAX_PIXEL_ROW:
        return "split or long rows"
    if mode() != "all" and any(isinstance(st, Stage) and st.combine == "welford"
                               for r in rk.recipes.values() for st in r.steps):
        # a layer norm over the channels (level2/019): 1.13x the time of cuDNN and a row kernel with a
        # division an element (bench/session17/first/ab_rows_h100.json), 1.03x with a division a thread
        # (ff_welford_add_batch, bench/session17/third/ab_019_024_h100.json; 92 registers)
        return "a Welford stage (measured slower in the epilogue)"
    for fed in rk.inputs:
        if rk.phase.get(fed) != ELEM or fed.producer is None:
            continue
        views, v = [], fed
        while v.producer is not None and v.producer.target == "aten.permute.default":
            views.insert(0, v.producer)
            v = v.producer.arg("self")
        node = v.producer
        if node is None or node.target != CONV2D or not is_channels_last(v):
            continue
        k = v.type.shape[1]
        inside = set(rk.nodes) | set(views)
        chain = [v] + [n.outputs[0] for n in views]
        if rk.length != k or rk.rows != v.type.numel // k or \
                any(c in live or any(u not in inside for u in users.get(c, [])) for c in chain):
            continue
        kept = [d for d in range(len(rk.space)) if d not in rk.axes and rk.space[d] > 1]
        red = [d for d in rk.axes if rk.space[d] > 1]
        st = rk.strides[fed]
        if [st[d] for d in kept] != [k * s for s in contiguous_strides([rk.space[d] for d in kept])] or \
                [st[d] for d in red] != list(contiguous_strides([rk.space[d] for d in red])):
            continue
        return node, fed, views
    return "no convolution's channels"
