"""layout: which convolutions run channels-last.

Measured on an H100 (bench/conv_layouts_h100.md, every conv of the suite alone): cuDNN runs
a k×k 2D convolution (k > 1) with 16 or more input channels in 0.39-0.68× of its NCHW time
when input, weight and output are channels-last (transposed 2D/3D convolutions 0.64-0.70×,
depthwise 0.34×), a 3D convolution in 0.85× (about what converting its input costs, so 3D
convolutions stay NCHW: with the tiled conversion, the suite's 12 conv3d problems measured
0.95-1.07x of their NCHW plans' times, the norms after them up to 1.21x slower (bench/conv3d_cl
against bench/conv_final); FUSEFORGE_CL_CONV3D=1 lets them switch, to measure that again); 1×1
convolutions gain nothing alone, so they run channels-last only where that spares a conversion
(_why_not, converted_1x1); convolutions with 1 or 6 input channels lose up to 19 %;
cudnn.benchmark changes nothing. The input is converted by a tiled transpose (ff::to_channels_last,
0.07 ms for 134 MB on an H200, ATen's copy 0.14), the weight once. The output is best read in
place (a plain .contiguous() of it costs 5.8 copies), by generated kernels:
- pointwise kernels read it through a transposing tile and write the graph's own layout;
- row kernels whose rows of it are contiguous channels-last (a reduction over the channels:
  min, softmax, layer norm over the channels, in NCHW rows strided by the pixels);
- row kernels over the pixels that only reduce (means: the channels side by side, the outer
  schedule), or whose rows are runs of channels read 4 at a time (group norm);
- permutes of it (ConvNeXt's permute to NHWC), whose readers then follow the same rules (the
  pointwise ops between the convolution and the permute move after it: lower.py);
- window kernels (pooling), through a tile that reads along the channels and writes NCHW along
  the pixels (codegen/window.py; one thread an output measured slower, bench/conv_cl_rows):
  measured on an H100, the nine problems that pool a convolution 0.68-0.86x of their times with
  the conversion back (bench/session14/ab_windows_split_h100.json; FUSEFORGE_CL_WINDOWS=0).
Whole batch and instance norms (their NCHW results written across the rows) measured slower
reading a channels-last tensor (bench/pixel_rows), so they read an NCHW copy (below); a batch or
instance norm after a convolution that may run channels-last
is therefore split into its statistics and pointwise ops that apply them (split_norms: level2/001
0.81 -> 0.65 ms end to end, bench/session7/a), and kept whole where the convolution stays NCHW
for another reader. The plan is made, such convolutions are switched to channels-last, the
plan is made again, and a switch whose readers did not stay kernels that read it well is undone.
A convolution whose readers want NCHW (those, an extern such as cat, the model's result) still
runs channels-last, its output converted back by the same tile kernel (ff::to_nchw): measured on
an H100, the DenseNet block's four convolutions read by cat 1.24 -> 0.92 ms, eleven problems with
pooling or whole-norm readers 1-4 % faster (bench/session11/ab_results/ab3). FUSEFORGE_CL_BACK=0
keeps those NCHW, FUSEFORGE_CHANNELS_LAST=0 every convolution (to measure).
A channels-last convolution's input needs no conversion where a pointwise kernel that only such
convolutions read writes it channels-last (_cl_producers; FUSEFORGE_CL_PRODUCERS=0 turns it off),
or where it is a cat along the channels, then written piece by piece into its channels-last slices
(_cats_for_channels_last; FUSEFORGE_CAT_CL=0): measured on an H100, VGG, ResNet, SE and U-Net
blocks 0.87-0.95x, U-Net 0.89x with both (bench/session12/ab_*_h100.json). A piece that a pointwise
kernel computes from channels-last inputs, for the cat alone or for it and pools reading it through
their tile, is written into its slice by that kernel (_pieces_in_place; FUSEFORGE_CAT_IN_PLACE=0):
U-Net's block 1.309 -> 1.201 ms with both its pieces in place (bench/session21: the first alone
0.960x side by side; the suite re-timed).
"""
from __future__ import annotations

import collections
import math
import os

import torch

from . import ops
from .graph import Node, TensorType

# the convolutions that measured faster channels-last (ops/convs.py lists every conv target)
CHANNELS_LAST_CONVS = {"aten.conv2d.default", "aten.conv2d.padding", "aten.conv_transpose2d.input",
                       "aten.conv_transpose3d.input"}
MIN_IN_CHANNELS = 16
# grouped (not depthwise) convolutions measured slower channels-last; grouped transposed 2D
# ones measured faster (level1/034: 1.17x eager)
GROUPED_SLOWER = {"aten.conv2d.default": "2D convolution", "aten.conv2d.padding": "2D convolution",
                  "aten.conv_transpose3d.input": "3D transposed convolution"}


def channels_last_strides(shape) -> tuple[int, ...]:
    fmt = torch.channels_last if len(shape) == 4 else torch.channels_last_3d
    return tuple(torch.empty(shape, device="meta", memory_format=fmt).stride())


def is_channels_last(v) -> bool:
    """Whether the value is a 4D/5D tensor laid out channels-last."""
    return v.type.ndim in (4, 5) and v.type.strides == channels_last_strides(v.type.shape)


def channels_last_like(t) -> bool:
    """Whether a 4D/5D type is laid out channels-last or as a channel slice of a channels-last
    buffer (a piece of a cat written in place, _pieces_in_place): the channels adjacent, the
    pixels then the images outside them."""
    if t.ndim not in (4, 5) or t.shape[1] > 1 and t.strides[1] != 1:
        return False
    big = [d for d in channels_last_order(t.ndim) if t.shape[d] > 1]
    return all(t.strides[a] > t.strides[b] for a, b in zip(big, big[1:]))


def contiguous_strides(shape) -> tuple[int, ...]:
    return tuple(torch.empty(shape, device="meta").stride())


def channels_last_order(ndim: int) -> tuple[int, ...]:
    """The dims of a channels-last tensor, outermost first: N, the spatial dims, C."""
    return (0,) + tuple(range(2, ndim)) + (1,)


def _writes_channels_last(k) -> bool:
    """A pointwise kernel that walks and writes channels-last (_cl_producers chose its output for a
    channels-last convolution): it reads a channels-last tensor of its shape in place, no tile."""
    if len(k.shape) not in (4, 5):
        return False
    cl = channels_last_strides(k.shape)
    return k.order == channels_last_order(len(k.shape)) and \
        all(o.type.shape == k.shape and o.type.strides == cl for o in k.outputs)


def _why_not(node, nchw=frozenset()) -> str | None:
    """Whether the convolution itself is one that measured faster channels-last. A 1x1 convolution
    is a product over the channels, as fast either way alone (level1/027: 1.33x slower with its
    input converted), but channels-last among channels-last neighbours it spares their conversions
    (level3/005 0.875x, 006 0.93x, 007 0.88x of their times; bench/session13/ab_cl_1x1_h100.json);
    `nchw` names the ones whose input would need a conversion of its own (converted_1x1), which
    stay NCHW (level3/008's project convolution: 1.05x slower converted). FUSEFORGE_CL_1X1=0 keeps
    every 1x1 convolution NCHW."""
    x, w = node.arg("input"), node.arg("weight")
    y = node.outputs[0]
    if x.type.dtype != torch.float32 or x.type.ndim not in (4, 5) or y.type.ndim != x.type.ndim:
        return "not a batched float32 2D/3D convolution"
    if x.type.shape[1] < MIN_IN_CHANNELS:
        return f"{x.type.shape[1]} input channels (measured slower channels-last below {MIN_IN_CHANNELS})"
    if math.prod(w.type.shape[2:]) == 1:
        if os.environ.get("FUSEFORGE_CL_1X1", "1") == "0":
            return "a 1x1 convolution (FUSEFORGE_CL_1X1=0)"
        if node.name in nchw:
            return "a 1x1 convolution whose input would need a conversion of its own (measured no faster)"
        if y.type.shape[1] < MIN_IN_CHANNELS:   # (level3/017's head, 2 channels: 1.03x slower)
            return f"a 1x1 convolution with {y.type.shape[1]} output channels"
    if y.type.shape[1] == 1 or math.prod(y.type.shape[2:]) == 1:
        return "an output without both channels and pixels"
    if y.type.strides != contiguous_strides(y.type.shape):
        return "an output that is not contiguous NCHW in the graph"
    groups = node.arg("groups")
    if node.target in GROUPED_SLOWER and 1 < groups < x.type.shape[1]:
        return f"a grouped {GROUPED_SLOWER[node.target]} (measured slower channels-last: bench/conv_final, " \
               "level1/025 0.98x and level1/037 0.91x eager with it)"
    return None


def _contiguous_rows(k, v) -> bool:
    """Whether the row kernel's rows of v are contiguous in memory (the reduced dims of v, by
    stride, run 1, size, size x size, ...): rows over the channels of a channels-last tensor."""
    st = k.strides.get(v)
    if st is None:
        return False
    red = sorted((d for d in k.axes if k.space[d] > 1 and st[d] != 0), key=lambda d: st[d])
    step = 1
    for d in red:
        if st[d] != step:
            return False
        step *= k.space[d]
    return bool(red)


def _row_reader_why_not(k, v, tentative: bool) -> str | None:
    """A row kernel reads a channels-last convolution well where its rows of it are contiguous
    (a reduction over the channels), where it only reduces (a mean over the pixels: the channels
    side by side in a block, on the outer schedule), or where its rows are runs of channels read
    4 at a time (group norm: its NCHW result written element by element). Measured on an H100:
    means over the pixels 1.5x faster end to end (level2/016 0.62 -> 0.42 ms, 021 0.62 -> 0.42;
    bench/session5/changed against bench/conv_final), group norms 1.1-1.5x (002 1.05 -> 0.72 ms,
    014 1.15 -> 0.85, 028 0.26 -> 0.23; bench/session5/group_norm). Batch and instance norm keep
    NCHW: with their result written through the outer schedule's tile they measured 0.87-1.20x
    of their NCHW plans' times on H200s (bench/pixel_rows/689356b_h200/cl_rows_all against
    bench/conv_bias_h200: level2/001 and level3/007, 008 faster; the level3 ResNet block (1.20x),
    U-Net and level2/043 slower), and so does a group norm whose runs do not take the vector path
    (read one element at a time it measured 1.15x slower: bench/pixel_rows/a6f7499).
    FUSEFORGE_CL_ROWS=all lets every row and window reader take channels-last, to measure that
    again. `tentative`: v's strides are still NCHW (the rows are checked in the plan made with
    channels-last strides)."""
    if _all_readers() or tentative or _contiguous_rows(k, v):
        return None
    from .codegen.rows import vector_width
    from .plan_rows import ELEM, runs_along_elements, schedule_of
    if any(k.phase.get(o) == ELEM and runs_along_elements(k, o) for o in k.outputs) and \
            (schedule_of(k)[2] == "outer" or vector_width(k) == 1):
        return f"{k.name} is a row kernel over the pixels that writes an NCHW result (measured slower " \
               "on a channels-last input: bench/pixel_rows)"
    return None


def _window_tiles() -> bool:
    """On unless FUSEFORGE_CL_WINDOWS=0: a window kernel whose pooled input is a channels-last
    convolution's output reads it in place through a tile (codegen/window.py's channels_last_tile)
    instead of an NCHW copy."""
    return os.environ.get("FUSEFORGE_CL_WINDOWS") != "0"


def _all_readers() -> bool:
    """FUSEFORGE_CL_ROWS=all: every row and window reader takes channels-last (to measure)."""
    return os.environ.get("FUSEFORGE_CL_ROWS") == "all"


def _views(graph, v) -> list:
    """The permutes of v that externs compute (views: their strides follow v's)."""
    return [u for u in graph.users().get(v, []) if u.target == "aten.permute.default"]


def _with_views(graph, y):
    """y, then each permute of it (and of those) with the permute node: (value, permute or None)."""
    stack = [(y, None)]
    while stack:
        v, u = stack.pop()
        yield v, u
        stack += [(w.outputs[0], w) for w in _views(graph, v)]


def _kernel_of(plan) -> dict:
    """{node: the kernel step (not an extern) that computes it}."""
    from .plan import Extern
    return {n: s for s in plan.steps if not isinstance(s, Extern) for n in s.nodes}


def _readers_why_not(plan, v, tentative: bool = False, root: bool = True) -> str | None:
    """Whether every reader of the convolution's output v is a generated kernel that reads it in
    place, or a permute of it whose readers are."""
    from .plan import Kernel
    from .plan_rows import RowKernel
    from .codegen.window import channels_last_tile
    from .plan_windows import WindowKernel
    if any(o is v for o in plan.graph.outputs):
        return "its output is a result of the model"
    kernel_of = _kernel_of(plan)
    for u in plan.graph.users().get(v, []):
        k = kernel_of.get(u)
        if getattr(k, "rows", None) is not None and u in k.nodes and v.producer in k.nodes:
            continue   # its channels' rows run in the generated convolution's epilogue (plan_conv.fold_pixel_rows)
        if k is None and u.target == "aten.permute.default":
            why = _readers_why_not(plan, u.outputs[0], tentative, root=False)
            if why:
                return why
            continue
        if k is None:
            return f"{u.name} ({u.target}) reads it as an extern"
        if isinstance(k, RowKernel):
            why = _row_reader_why_not(k, v, tentative)
            if why:
                return why
            continue
        if isinstance(k, WindowKernel):
            if not (_all_readers() or _window_tiles() and channels_last_tile(k, v)):
                return f"{k.name} is a window kernel that does not read it through a tile (one thread " \
                       "an output measured slower on a channels-last input: bench/conv_cl_rows)"
            continue
        if type(k) is not Kernel:
            return f"{k.name} is not a pointwise kernel"
        if root and k.shape == v.type.shape and _writes_channels_last(k):
            continue
        if any(o.type.shape != k.shape or o.type.strides != contiguous_strides(k.shape) for o in k.outputs):
            return f"{k.name} does not write contiguous tensors of its shape"
        if root and (k.shape != v.type.shape or k.order != tuple(range(len(k.shape)))):
            return f"{k.name} does not read it through a transposing tile"
        if not root and not tentative and v.type.strides != contiguous_strides(v.type.shape):
            return f"{k.name} reads a permute of it that is not contiguous"
    return None


def _cl_producers(plan, convs) -> list:
    """The outputs of pointwise kernels that only channels-last convolutions read, where every
    input of the kernel of its full size is channels-last too (a convolution's output) and the
    others are broadcast (per-channel operands): written channels-last, the kernel walks that
    layout (its reads and writes in place) and the convolution's input needs no conversion."""
    from .plan import Kernel
    kernel_of = {n: s for s in plan.steps if type(s) is Kernel for n in s.nodes}
    users, convs, out = plan.graph.users(), set(convs), []
    for conv in convs:
        x = conv.arg("input")
        k = kernel_of.get(x.producer)
        if k is None or k.outputs != [x] or any(o is x for o in plan.graph.outputs) or x in out:
            continue
        shape = x.type.shape
        if len(shape) not in (4, 5) or x.type.dtype != torch.float32 or k.shape != shape or \
                x.type.strides != contiguous_strides(shape) or not all(u in convs for u in users.get(x, [])):
            continue
        cl, numel = channels_last_strides(shape), math.prod(shape)
        if all(v.type.numel < numel or (v.type.shape == shape and v.type.strides == cl) or
               (_tile_in() and v.type.shape == shape and v.type.dtype == torch.float32 and
                v.type.strides[1:] == contiguous_strides(shape)[1:]) for v in k.inputs):
            out.append(x)
    return out


def _tile_in() -> bool:
    """On unless FUSEFORGE_CL_TILE_IN=0: a pointwise kernel with NCHW inputs of
    its full size writes channels-last for the convolutions reading it too, through a transposing
    tile (codegen/pointwise.py's _render_cuda_tiled_nchw), and a norm whose result only such
    convolutions read is split for it (split_norms): DenseNet's layers (a view of the cat's buffer,
    batch norm, relu, convolution: 0.12 ms of conversions in level3/009) and U-Net's second
    convolution. Measured 0.85x level3/009's time, 0.96x level3/017's
    (bench/session14/ab_next_flags_h100.json)."""
    return os.environ.get("FUSEFORGE_CL_TILE_IN") != "0"


def _read_by_cl_conv(graph, users: dict, v, nchw, depth: int = 4) -> Node | None:
    """A convolution that may run channels-last and reads v, directly or through pointwise ops
    (an activation), where every reader on the way is one of those: else None."""
    readers = users.get(v, [])
    if not readers or depth == 0 or any(o is v for o in graph.outputs):
        return None
    found = None
    for u in readers:
        if u.target in CHANNELS_LAST_CONVS and u.arg("input") is v and _why_not(u, nchw) is None:
            found = found or u
            continue
        entry = ops.lookup(u.target)
        if entry is None or entry.kind != ops.POINTWISE or len(u.outputs) != 1 or \
                u.outputs[0].type.shape != v.type.shape:
            return None
        below = _read_by_cl_conv(graph, users, u.outputs[0], nchw, depth - 1)
        if below is None:
            return None
        found = found or below
    return found


def _cats_for_channels_last(plan, convs) -> dict:
    """The cats along the channels (float32, 4D/5D) that only channels-last convolutions read: each
    piece can be transposed straight into its slice of a channels-last result (ff::cat_channels_last),
    in place of a cat then a conversion (U-Net's skip connection: a read and a write of 134 MB less).
    Measured on an H100 (bench/session12/ab_cat_cl_h100.json): U-Net's block 0.94x of its time
    with the cat then the conversion. FUSEFORGE_CAT_CL=0 turns it off. {cat node: the convolutions' names}."""
    users, convs, out = plan.graph.users(), set(convs), {}
    for conv in convs:
        x = conv.arg("input")
        cat = x.producer
        if cat is None or cat.target != "aten.cat.default" or any(o is x for o in plan.graph.outputs):
            continue
        pieces = cat.arg("tensors")
        if x.type.ndim not in (4, 5) or cat.arg("dim") % x.type.ndim != 1 or x.type.dtype != torch.float32 or \
                any(p.type.dtype != torch.float32 or p.type.ndim != x.type.ndim for p in pieces):
            continue
        if all(u in convs for u in users.get(x, [])):
            out[cat] = sorted(u.name for u in users[x])
    return out


def _pieces_in_place(graph, make_plan, plan, cats: dict, notes: list[str]):
    """The pieces of the channels-last cats (`cats`, _cats_for_channels_last) that a pointwise
    kernel computes from channels-last inputs for the cat alone (U-Net's upsampling: the transposed
    convolution's bias added) or for the cat and pooling kernels that read it through their
    channels-last tile (U-Net's skip connection, pooled on the way down): the kernel writes them
    in place, into their slice of the cat's channels-last buffer (a 16-byte store where 4 channels
    are), and the cat only transposes the others. FUSEFORGE_CAT_IN_PLACE=0 turns it off. Returns
    the plan and {cat node: the names of the pieces written in place}."""
    from .codegen.window import channels_last_tile
    from .plan import Kernel
    from .plan_windows import WindowKernel
    if os.environ.get("FUSEFORGE_CAT_IN_PLACE") == "0":
        return plan, {}

    def pooled(k, x, also) -> bool:   # a pooling kernel reading x through its channels-last tile
        return type(k) is WindowKernel and channels_last_tile(k, also)

    kernel_of = _kernel_of(plan)
    users, outputs = graph.users(), {id(v) for v in graph.outputs}
    old, placed = {}, {}
    for cat in cats:
        pieces, strides = cat.arg("tensors"), channels_last_strides(cat.outputs[0].type.shape)
        for x in pieces:
            k = kernel_of.get(x.producer)
            if type(k) is not Kernel or k.outputs != [x] or id(x) in outputs or cat not in users.get(x, []) or \
                    sum(p is x for p in pieces) != 1 or k.shape != x.type.shape or x.type.dtype != torch.float32 or \
                    not all(v.type.numel < k.numel or is_channels_last(v) for v in k.inputs) or \
                    not all(u is cat or pooled(kernel_of.get(u), x, x) for u in users[x]):
                continue
            old[x] = x.type
            x.type = TensorType(x.type.shape, strides, x.type.dtype)
            placed.setdefault(cat, []).append(x.name)
    if not placed:
        return plan, {}
    switched = make_plan(graph)
    kernel_of = _kernel_of(switched)
    if any(type(kernel_of.get(x.producer)) is not Kernel or kernel_of[x.producer].outputs != [x] or
           not all(u in cats or pooled(kernel_of.get(u), x, None) for u in users[x]) for x in old):
        for x, t in old.items():   # (the fusion changed around them: left to the cat)
            x.type = t
        return make_plan(graph), {}
    notes.extend(f"{', '.join(names)}: written in place into {cat.name}'s channels-last buffer (no transpose)"
                 for cat, names in placed.items())
    return switched, {cat: tuple(names) for cat, names in placed.items()}


def _set_channels_last(graph, y, old: dict) -> None:
    """y's type channels-last, and the permutes of it with it (`old` keeps the types they had)."""
    for v, u in _with_views(graph, y):
        old.setdefault(v, v.type)
        src = u.args[0].type if u is not None else None
        strides = channels_last_strides(v.type.shape) if u is None else \
            tuple(src.strides[d % src.ndim] for d in u.arg("dims"))
        v.type = TensorType(v.type.shape, strides, v.type.dtype)


def _channels_last_source(v, nchw=frozenset()) -> tuple[Node | None, list[Node]]:
    """The convolution that may run channels-last (its own rules) whose output v is, or from
    which pointwise ops (a bias add) compute v element by element; and those ops, in order."""
    from .lower import elementwise_source
    src, chain = elementwise_source(v)
    p = src.producer
    if p is None or p.target not in CHANNELS_LAST_CONVS or _why_not(p, nchw) is not None:
        return None, []
    return p, chain


def split_norms(graph, decisions: list[str], whole=frozenset(), nchw=frozenset()):
    """A batch norm (training) or instance norm of a convolution that may run channels-last:
    its statistics stay a row kernel that only reduces (the channels side by side, outer
    schedule) and its application becomes pointwise ops, which read the convolution through a
    transposing tile and fuse with what follows. Whole, the norm's kernel writes its NCHW result
    across the rows, measured slower than cuDNN's NCHW convolution (see _row_reader_why_not),
    so the convolution kept NCHW: cuDNN then transposes its input and output itself (level2/001:
    0.106 + 0.181 ms around a 0.208 ms convolution, scripts/profile_kernels.py). The same
    arithmetic: (x - mean) * rstd, then the weight and the bias. Where x is computed from the
    convolution (a bias add), its other readers after the norm compute it again too, so that
    only the convolution's output is written. A group norm reads a channels-last convolution
    well whole (runs of channels), but is split too (native_group_norm's statistics per group), so
    that a row kernel after it, such as level2/014's logsumexp over the channels, applies it as it
    reads the convolution: no full-size tensor is written between them (level2/014 0.848 -> 0.665
    ms, bench/session13/ab_next_flags_h100.json; FUSEFORGE_SPLIT_GROUP_NORM=0 keeps it whole). A norm
    that is a result of the model is split too (its application writes the NCHW result through
    the tile: level2/002 0.875x of its time, level2/028 1.009x, bench/session14/ab_windows_split_h100.json;
    FUSEFORGE_SPLIT_RESULTS=0 keeps it whole). Norms named in
    `whole` stay whole (split, their convolution still kept NCHW: another reader wants it so).
    Returns the graph and {split norm: (its convolution, whether it reads it)}."""
    split: dict[str, tuple[str, bool]] = {}
    if _all_readers() or os.environ.get("FUSEFORGE_CHANNELS_LAST", "1") == "0":
        return graph, split  # the whole norm reads channels-last, or no convolution does: nothing to split
    from .lower import Builder, _replace_uses, _substitute, _taken, compute_again
    taken = _taken(graph)
    users, live = graph.users(), graph.live_out()
    results = os.environ.get("FUSEFORGE_SPLIT_RESULTS", "1") != "0"
    for node in list(graph.nodes):
        entry = ops.lookup(node.target)
        if entry is None or entry.split is None or \
                not (users.get(node.outputs[0]) or results and node.outputs[0] in live):
            continue
        if node.target == "aten.group_norm.default" and os.environ.get("FUSEFORGE_SPLIT_GROUP_NORM", "1") == "0":
            continue   # (see above)
        x = node.arg("input")
        conv, chain = _channels_last_source(x, nchw)
        reads = conv is not None   # it reads the convolution (else its result feeds one: _tile_in)
        if conv is None and _tile_in():
            conv, chain = _read_by_cl_conv(graph, users, node.outputs[0], nchw), []
        if conv is None or isinstance(entry.expr(node), str):   # the recipe's conditions
            continue
        if node.name in whole:
            decisions.append(f"{node.name} ({node.target}): one row kernel, since {conv.name} stays NCHW "
                             "even with it split")
            continue
        b = Builder(node, taken)
        # the statistics' kernel reads x; the application computes it again from the convolution
        # (else x would be written by the one and read by the other)
        again = compute_again(chain, b)
        y = entry.split(node, b, again.get(x, x))
        at = graph.nodes.index(node)
        graph.nodes[at + 1:at + 1] = b.nodes
        _replace_uses(graph, {node.outputs[0]: y})
        if x in again:   # x's other readers after it compute it again too (a residual of the convolution)
            for n in graph.nodes[at + 1 + len(b.nodes):]:
                n.args = [_substitute(a, {x: again[x]}) for a in n.args]
        live, users = graph.live_out(), graph.users()
        if not any(v in live or users.get(v) for v in node.outputs):   # all it computed is now elsewhere
            graph.nodes.remove(node)
        decisions.append(f"{node.name} ({node.target}): statistics, then pointwise ops, since {conv.name} "
                         + ("may run channels-last" if reads else "reads its result and may run channels-last "
                            "(FUSEFORGE_CL_TILE_IN=0 turns this off)"))
        split[node.name] = (conv.name, reads)
    return graph, split


def _reduces_pixels(u: Node) -> bool:
    """A mean, sum or max over every pixel of each channel (an SE block's squeeze)."""
    x = u.args[0] if u.args else None
    if x is None or not hasattr(x, "type") or x.type.ndim not in (4, 5):
        return False
    spatial = set(range(2, x.type.ndim))
    if u.target in ("aten.mean.dim", "aten.sum.dim_IntList", "aten.amax.default"):
        dims = u.arg("dim")
        return dims is not None and {d % x.type.ndim for d in dims} == spatial
    if u.target in ("aten.adaptive_avg_pool2d.default", "aten._adaptive_avg_pool2d.default",
                    "aten.adaptive_avg_pool3d.default", "aten._adaptive_avg_pool3d.default"):
        return all(s == 1 for s in u.arg("output_size"))
    return False


def recompute_for_pixel_readers(graph, notes: list[str]) -> None:
    """On unless FUSEFORGE_RECOMPUTE=0: pointwise ops computed from a convolution
    that may run channels-last (a split batch norm's application, an activation) whose result a
    reduction over the pixels reads besides other readers (an SE block: the mean, then the product
    with its scale): the reduction gets its own copy of the ops, so its row kernel only reduces,
    reading the convolution in place, and writes no NCHW element result (measured slow on a
    channels-last input: bench/pixel_rows) that would send the convolution back to NCHW
    (level3/008's depthwise convolution: 0.26 ms of conversions). Measured 0.86x level3/008's
    time, 0.87x level3/019's (bench/session14/ab_next_flags_h100.json)."""
    if os.environ.get("FUSEFORGE_RECOMPUTE") == "0":
        return
    from .lower import Builder, _substitute, _taken, compute_again
    taken, users = _taken(graph), graph.users()
    for node in list(graph.nodes):
        if len(node.outputs) != 1:
            continue
        v = node.outputs[0]
        readers = users.get(v, [])
        conv, chain = _channels_last_source(v)
        means = [u for u in readers if _reduces_pixels(u)]
        if conv is None or not chain or not means or len(means) == len(readers):
            continue
        for u in means:
            b = Builder(u, taken)
            again = compute_again(chain, b)
            at = graph.nodes.index(u)
            graph.nodes[at:at] = b.nodes
            u.args = [_substitute(a, {v: again[v]}) for a in u.args]
            notes.append(f"{u.name} ({u.target}): computes {', '.join(p.name for p in chain)} again from {conv.name} "
                         "(FUSEFORGE_RECOMPUTE=0 turns this off), so that its kernel only reduces")


def _write_channels_last_inputs(graph, make_plan, plan, chosen, cl_convs, notes):
    """The inputs of the channels-last convolutions `cl_convs` that pointwise kernels can write
    channels-last (_cl_producers), switched; undone where a `chosen` convolution's readers then stop
    reading it in place. Measured on an H100 (bench/session12/ab_cl_producers_h100.json): VGG block 0.87x,
    ResNet, U-Net and SE blocks 0.94-0.95x of their times with the conversions. FUSEFORGE_CL_PRODUCERS=0
    turns it off."""
    xs = _cl_producers(plan, cl_convs)
    if not xs:
        return plan
    old = {x: x.type for x in xs}
    for x in xs:
        x.type = TensorType(x.type.shape, channels_last_strides(x.type.shape), x.type.dtype)
    switched = make_plan(graph)
    why = next((w for n in chosen if (w := _readers_why_not(switched, n.outputs[0]))), None)
    if why:
        for x, t in old.items():
            x.type = t
        notes.append(f"convolution inputs kept NCHW: written channels-last, {why}")
        return make_plan(graph)
    notes.extend(f"{x.name}: written channels-last for the convolution that reads it (no conversion)" for x in xs)
    return switched


def converted_1x1(plan) -> set[str]:
    """The channels-last 1x1 convolutions whose input is converted for them alone (not written
    channels-last by a pointwise kernel or a convolution, not converted anyway for a larger
    convolution or a second one reading it too: level3/006's first and downsampling ones), unless
    they widen it (fewer channels in than out) for a kernel that writes channels-last for the next
    convolution: the conversion is then the cheapest one on the way (level3/007's expansion, 32 ->
    192 channels, before its depthwise convolution)."""
    def is_1x1(n):
        return math.prod(n.arg("weight").type.shape[2:]) == 1

    def widens_for_cl(n):
        y = n.outputs[0]
        return n.arg("input").type.shape[1] < y.type.shape[1] and \
            any(y in k.inputs and any(is_channels_last(o) for o in k.outputs) for k in plan.kernels)
    cl = [e.node for e in plan.externs if e.channels_last and e.node.target in CHANNELS_LAST_CONVS]
    readers = collections.Counter(n.arg("input") for n in cl)
    shared = {n.arg("input") for n in cl if not is_1x1(n) or readers[n.arg("input")] > 1}
    return {n.name for n in cl if is_1x1(n) and n.arg("input") not in shared and
            not is_channels_last(n.arg("input")) and not widens_for_cl(n)}


def plan_with_layouts(graph, make_plan, nchw=frozenset()):
    plan = make_plan(graph)
    if os.environ.get("FUSEFORGE_CHANNELS_LAST", "1") == "0":
        plan.decisions.append("layouts: FUSEFORGE_CHANNELS_LAST=0, every convolution NCHW")
        return plan
    notes, chosen, back = [], [], {}
    convs = CHANNELS_LAST_CONVS | ({"aten.conv3d.default"} if os.environ.get("FUSEFORGE_CL_CONV3D") == "1" else set())
    converts_back = os.environ.get("FUSEFORGE_CL_BACK", "1") != "0"
    for step in plan.externs:
        if step.node.target not in convs:
            continue
        why = _why_not(step.node, nchw)
        if why:
            notes.append(f"{step.node.name} ({step.node.target}): NCHW, {why}")
        elif why := _readers_why_not(plan, step.node.outputs[0], tentative=True):
            back[step.node] = why
        else:
            chosen.append(step.node)
    old: dict = {}
    while chosen:
        for n in chosen:
            _set_channels_last(graph, n.outputs[0], old)
        plan = make_plan(graph)
        undone = [(n, why) for n in chosen if (why := _readers_why_not(plan, n.outputs[0]))]
        if not undone:
            break
        for n, why in undone:
            back[n] = f"channels-last would make {why}"
            chosen.remove(n)
        for v, t in old.items():
            v.type = t
        old = {}
        if not chosen:
            plan = make_plan(graph)
    cl_convs = chosen + (list(back) if converts_back else [])
    if os.environ.get("FUSEFORGE_CL_PRODUCERS", "1") != "0" and cl_convs:
        plan = _write_channels_last_inputs(graph, make_plan, plan, chosen, cl_convs, notes)
    cats = _cats_for_channels_last(plan, cl_convs) if os.environ.get("FUSEFORGE_CAT_CL", "1") != "0" else {}
    plan, placed = _pieces_in_place(graph, make_plan, plan, cats, notes) if cats else (plan, {})
    def inputs(n) -> str:   # (the to_channels_last of an input already channels-last does nothing)
        x = n.arg("input")
        done = is_channels_last(x) or x.producer in cats
        return f"input {'already channels-last' if done else 'converted'}, weight once"
    for n, why in back.items():
        notes.append(f"{n.name} ({n.target}): " + (f"channels-last ({inputs(n)}), output converted "
                                                   f"back to NCHW, since {why}" if converts_back else f"NCHW, {why}"))
    for step in plan.externs:
        if step.node in cats:
            step.cat_channels_last = True
            step.cat_placed = placed.get(step.node, ())
            notes.append(f"{step.node.name} ({step.node.target}): written channels-last, piece by piece, for "
                         f"{', '.join(cats[step.node])} (no conversion)")
        if step.node in back and converts_back:
            step.channels_last = step.to_nchw = True
        if step.node in chosen:
            step.channels_last = True
            readers = {s.name for v, _ in _with_views(graph, step.node.outputs[0])
                       for s in plan.kernels if set(s.nodes) & set(graph.users().get(v, []))}
            notes.append(f"{step.node.name} ({step.node.target}): channels-last ({inputs(step.node)}), "
                         f"read in place by {', '.join(sorted(readers))}")
    plan.decisions.extend(notes)
    return plan
