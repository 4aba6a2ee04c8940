"""lower: rewrite ops whose registry entry has a lowering into other registry ops, before planning.

Some ops reduce twice: cross entropy is a statistic per row (logsumexp and the target's logit)
and then a mean over the rows; triplet margin loss is two distances per row and then a mean.
No one kernel of the row kind does both (the rows are independent teams), so the entry says
how to write the op with ops that have kernels: per-row ops that fuse into one row kernel,
then a reduction over the rows that becomes a second one. Every node built here is a real ATen
op with eager's own semantics, so one the planner cannot generate still runs as an extern.

A lowering is `fn(node, builder) -> outputs` (one Value per output of the node), a string
saying why the node stays as it is, or None where that goes without saying. Output types come from running the op on meta tensors.
"""
from __future__ import annotations

import os

import torch

from . import ops
from .capture import bind_arguments
from .graph import Graph, Node, Value
from .ops.windows import per_dim


class Builder:
    """Appends ATen nodes in place of one node; names derive from the node's."""

    def __init__(self, node: Node, taken: set[str]):
        self.node, self.taken, self.nodes = node, taken, []

    def __call__(self, op, *args, **kwargs) -> Value | tuple:
        bound = bind_arguments(op, list(args), kwargs)
        base = f"{self.node.name}_{op._schema.name.split('::')[-1].strip('_')}"
        name, k = base, 1
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        node = Node(name, op, bound)
        from .capture import _tensor_type
        result = op(*[_meta(v) for v in args], **{key: _meta(v) for key, v in kwargs.items()})
        results = result if isinstance(result, (tuple, list)) else (result,)
        listed = len(op._schema.returns) == 1 and isinstance(result, list)   # one Tensor[] result
        node.outputs = [Value(name if len(results) == 1 else f"{name}_{i}", _tensor_type(r, name),
                              producer=node, index=0 if listed else i, list_index=i if listed else None)
                        for i, r in enumerate(results)]
        self.nodes.append(node)
        return node.outputs[0] if len(results) == 1 else tuple(node.outputs)


def _meta(v, swap: dict | None = None):
    """A meta tensor for each Value in v (lists too), read through `swap` first."""
    if isinstance(v, Value):
        t = (swap or {}).get(v, v).type
        return torch.empty_strided(t.shape, t.strides, dtype=t.dtype, device="meta")
    if isinstance(v, (list, tuple)):
        return [_meta(x, swap) for x in v]
    return v


def _call_args(node: Node, values: list) -> tuple[list, dict]:
    """The node's arguments, one value each in schema order, as (positional, keyword-only)."""
    args, kwargs = [], {}
    for a, v in zip(node.schema.arguments, values):
        if a.kwarg_only:
            kwargs[a.name] = v
        else:
            args.append(v)
    return args, kwargs


def lower(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """Lower every node whose entry lowers it (repeatedly: a lowering may build lowered ops)."""
    taken = _taken(graph)
    built: set[Node] = set()                   # nodes a lowering made: their "not lowered" is no news
    told: set[Node] = set()                    # nodes whose "not lowered" is logged (once)
    for _ in range(4):                         # lowerings nest at most this deep
        changed = False
        nodes: list[Node] = []
        replace: dict[Value, Value] = {}
        for node in graph.nodes:
            if replace:
                node.args = [_substitute(a, replace) for a in node.args]
            entry = ops.lookup(node.target)
            if entry is None or entry.lower is None:
                nodes.append(node)
                continue
            b = Builder(node, taken)
            outs = entry.lower(node, b)
            if outs is None:                   # nothing to lower here, and nothing to say
                nodes.append(node)
                continue
            if isinstance(outs, str):
                if decisions is not None and node not in built and node not in told:
                    told.add(node)
                    decisions.append(f"{node.name} ({node.target}): not lowered, {outs}")
                nodes.append(node)
                continue
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            for old, new in zip(node.outputs, outs):
                replace[old] = _retyped(new, old)
            nodes.extend(b.nodes)
            built.update(b.nodes)
            changed = True
            if decisions is not None:
                decisions.append(f"{node.name} ({node.target}): lowered to "
                                 f"{', '.join(n.target.removeprefix('aten.') for n in b.nodes)}")
        graph.nodes = nodes
        _replace_uses(graph, replace)
        if not changed:
            break
    return graph


def _sink(graph: Graph, targets, move, why: str, decisions: list[str] | None) -> None:
    """view(f(x, ...)) -> f'(view(x), ...) for a node of `targets` (a permute, a split) over a
    pointwise f whose only reader it is, where f's chain sits on an extern's result: the view
    then reads x itself, and f fuses into the kernel after the view. `move(node, q, b)` builds
    the replacement with Builder b and returns {old output: new value}. Same values: f is
    elementwise."""
    taken = _taken(graph)
    while True:
        users, live = graph.users(), graph.live_out()
        for node in graph.nodes:
            x = node.args[0] if node.target in targets else None
            q = x.producer if isinstance(x, Value) else None
            if q is None or x in live or users.get(x) != [node] or not _pointwise_after_extern(q, users, live):
                continue
            b = Builder(node, taken)
            replace = {old: _retyped(new, old) for old, new in move(node, q, b).items()}
            at = graph.nodes.index(node)
            graph.nodes[at:at + 1] = b.nodes
            graph.nodes.remove(q)
            _replace_uses(graph, replace)
            if decisions is not None:
                decisions.append(f"{q.name} ({q.target}): moved after {node.name} ({why})")
            break
        else:
            return


def sink_past_permutes(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """permute(f(x, b)) -> f(permute(x), permute(b)) (a ConvNeXt block: conv, its bias add,
    permute to channels-last, layer norm): layout.py can then lay x out so that the permuted
    tensor is contiguous."""
    A = torch.ops.aten

    def move(node, q, b):
        nd = node.args[0].type.ndim
        dims = [d % nd for d in node.arg("dims")]     # permute(0, -1, 1, 2) names dims from the end
        values = []
        for v in q.args:
            if isinstance(v, Value) and v.type.ndim < nd and v.type.ndim > 0:
                # broadcast from the right: one view to its permuted shape (of the tensor under
                # a view: a conv bias viewed as [C, 1, 1] becomes [1, 1, 1, C] in one step)
                shape = [1] * (nd - v.type.ndim) + list(v.type.shape)
                src = v.producer.args[0] if v.producer is not None and v.producer.target == "aten.view.default" else v
                v = b(A.view.default, src, [shape[d] for d in dims]) if \
                    [d for d in dims if shape[d] > 1] == sorted(d for d in dims if shape[d] > 1) else \
                    b(A.permute.default, b(A.view.default, src, shape), dims)
            elif isinstance(v, Value) and v.type.ndim == nd:
                v = b(A.permute.default, v, dims)
            values.append(v)
        args, kwargs = _call_args(q, values)
        return {node.outputs[0]: b(q.op, *args, **kwargs)}

    _sink(graph, ("aten.permute.default",), move, "permute, so that the permute reads its input and it fuses "
          "into the kernel after the permute", decisions)
    users = graph.users()   # views the moves left unread (a bias viewed for the add that moved)
    graph.nodes = [n for n in graph.nodes if n.target not in ("aten.view.default", "aten.permute.default")
                   or any(users.get(v) for v in n.outputs) or any(v in graph.live_out() for v in n.outputs)]
    return graph


def drop_expands(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """expand(v) read only by pointwise ops whose results have the expanded shape: they read v
    itself and broadcast it the same way (F.normalize divides by its norm expanded to the input's
    shape). The expand was an extern between the norm's row kernel and the division, which then
    took a pass of its own; now the division joins the row kernel. Same values: broadcasting
    reads v's element where the expanded view would."""
    users, live = graph.users(), graph.live_out()
    replace = {}
    for node in graph.nodes:
        if node.target != "aten.expand.default" or node.outputs[0] in live:
            continue
        e = node.outputs[0]
        readers = users.get(e, [])
        if not readers or not all(_broadcasts(u, e, node.args[0]) for u in readers):
            continue
        replace[e] = node.args[0]
        if decisions is not None:
            decisions.append(f"{node.name} ({node.target}): dropped, its pointwise readers broadcast "
                             f"{node.args[0].name} themselves")
    if replace:
        _replace_uses(graph, replace)
        graph.nodes = [n for n in graph.nodes if n.outputs[0] not in replace]
    return graph


def _broadcasts(u: Node, e: Value, v: Value) -> bool:
    """u is a pointwise op that, reading v where it reads e, gives a result of the same shape
    (checked by running it on meta tensors: ops that do not broadcast every operand fail)."""
    entry = ops.lookup(u.target)
    if entry is None or entry.kind != ops.POINTWISE or len(u.outputs) != 1:
        return False
    args, kwargs = _call_args(u, [_meta(a, {e: v}) for a in u.args])
    try:
        out = u.op(*args, **kwargs)
    except RuntimeError:
        return False
    return isinstance(out, torch.Tensor) and tuple(out.shape) == u.outputs[0].type.shape


def mean_of_convolutions(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """mean(conv2d(x, w) + b, spatial dims) -> avg_pool(x) [N, C, kh, kw] @ w + b: the mean of a
    stride-1 convolution (one group) over its output's pixels is the convolution, at one pixel, of
    the input averaged over each tap's window of it (the sums commute): level2/016's 32 -> 64
    channel 3x3 convolution of [64, 32, 128, 128] and its global average become two average pools
    (the rows first: the threads of a warp read a row's consecutive columns) and a [64, 288] x
    [288, 64] product. Where only the mean reads the convolution. Not looser than eager: the pools
    and the product are float32 (eager's convolution is TF32). FUSEFORGE_MEAN_OF_CONV=0 turns it
    off.
    A transposed convolution's (level2/027): each tap (r, t) reads the input rows i that land in
    the output (0 <= i s - p + r d < OH: a contiguous range, its length different at the edges, so
    no single pool) and likewise the columns; the sums over those ranges (the columns' first, then
    the rows' of those: slices summed, pieced together by cat) times the weights, over the pixels.
    Measured on an H200: level2/027 0.075 ms where its transposed convolution took 0.122
    (bench/session34/first/ab_027.log)."""
    if os.environ.get("FUSEFORGE_MEAN_OF_CONV", "1") == "0":
        return graph
    A = torch.ops.aten
    taken = _taken(graph)
    users, live = graph.users(), graph.live_out()
    for node in list(graph.nodes):
        parts = _mean_of_conv(node, users, live)
        if parts is None:
            continue
        conv, add = parts
        x, w = conv.arg("input"), conv.arg("weight")
        (n, c, h, wd), (kh, kw) = x.type.shape, w.type.shape[2:]
        k = conv.outputs[0].type.shape[1]
        oh, ow = conv.outputs[0].type.shape[2:]
        (ph, pw), (dh, dw) = per_dim(conv.arg("padding"), 2), per_dim(conv.arg("dilation"), 2)
        b = Builder(node, taken)
        if conv.target == "aten.conv_transpose2d.input":   # [N, C, H, W] -> tap sums [N, C, kh, kw], over the pixels
            sh, sw = per_dim(conv.arg("stride"), 2)

            def range_sums(t, dim, ranges):   # t summed over each tap's range of dim (each range once), side by side
                sums = {r: b(A.sum.dim_IntList, b(A.slice.Tensor, t, dim, r[0], r[1] + 1), [dim], True)
                        for r in dict.fromkeys(ranges)}
                return b(A.cat.default, [sums[r] for r in ranges], dim)
            cols = range_sums(x, 3, _tap_ranges(wd, ow, kw, sw, pw, dw))         # [N, C, H, kw]
            taps = range_sums(cols, 2, _tap_ranges(h, oh, kh, sh, ph, dh))      # [N, C, kh, kw]
            # the weights [C, K, kh, kw] as [K, C, kh, kw] over the pixels (made once: wrapper.made_once)
            w = b(A.clone.default, b(A.permute.default, w, [1, 0, 2, 3]), memory_format=torch.contiguous_format)
            w = b(A.mul.Tensor, w, 1.0 / (oh * ow))
        else:
            rows = b(A.avg_pool2d.default, x, [oh, 1], [dh, 1], [ph, 0], False, True, None)      # [N, C, kh, W]
            taps = b(A.avg_pool2d.default, rows, [1, ow], [1, dw], [0, pw], False, True, None)   # [N, C, kh, kw]
        flat = b(A.view.default, taps, [n, c * kh * kw])
        y = b(A.mm.default, flat, b(A.permute.default, b(A.view.default, w, [k, c * kh * kw]), [1, 0]))
        if add is not None:
            bias = next(v for v in add.args if isinstance(v, Value) and v is not conv.outputs[0])
            y = b(A.add.Tensor, y, b(A.view.default, bias, [k]))
        y = b(A.view.default, y, list(node.outputs[0].type.shape))
        at = graph.nodes.index(node)
        graph.nodes[at:at + 1] = b.nodes
        graph.nodes = [q for q in graph.nodes if q is not conv and q is not add]
        _replace_uses(graph, {node.outputs[0]: _retyped(y, node.outputs[0])})
        if decisions is not None:
            decisions.append(f"{node.name} ({node.target}): the mean of {conv.name}'s output over its pixels, as "
                             f"the average of its input over each tap's window times the weights "
                             f"({', '.join(q.target.removeprefix('aten.') for q in b.nodes)})")
        users, live = graph.users(), graph.live_out()
    return graph


def _tap_ranges(size: int, out: int, k: int, s: int, p: int, d: int) -> list[tuple[int, int]]:
    """For each tap r of a transposed convolution's dim: the first and last input index i whose
    output i s - p + r d falls inside [0, out)."""
    return [(max(0, -((r * d - p) // s)), min(size - 1, (out - 1 + p - r * d) // s)) for r in range(k)]


CONVS_OF_MEAN = ("aten.conv2d.default", "aten.conv_transpose2d.input")


def _mean_of_conv(node: Node, users, live):
    """(the convolution, its bias add or None) where node is a mean over every pixel of a float32
    convolution (one group, no bias of its own) that only it reads (through the bias add): of
    stride 1, whose padding the pools can take, or a transposed one, each of whose taps lands in
    the output."""
    if node.target != "aten.mean.dim" or node.arg("dtype") is not None:
        return None
    v = node.arg("self")
    if v.type.ndim != 4 or sorted(d % 4 for d in node.arg("dim")) != [2, 3] or v in live or users.get(v) != [node]:
        return None
    q, add = v.producer, None
    if q is not None and q.target == "aten.add.Tensor":
        add = q
        convs = [a for a in q.args if isinstance(a, Value) and a.producer is not None and
                 a.producer.target in CONVS_OF_MEAN]
        others = [a for a in q.args if isinstance(a, Value) and a not in convs]
        if len(convs) != 1 or len(others) != 1 or others[0].type.shape != (v.type.shape[1], 1, 1) or \
                q.arg("alpha") != 1 or convs[0] in live or users.get(convs[0]) != [q]:
            return None
        q = convs[0].producer
    if q is None or q.target not in CONVS_OF_MEAN or q.arg("bias") is not None or int(q.arg("groups")) != 1:
        return None
    x, w = q.arg("input"), q.arg("weight")
    if x.type.ndim != 4 or any(t.type.dtype != torch.float32 for t in (x, w, v)):
        return None
    oh, ow = q.outputs[0].type.shape[2:]
    ph, pw = per_dim(q.arg("padding"), 2)
    if q.target == "aten.conv_transpose2d.input":
        (sh, sw), (dh, dw) = per_dim(q.arg("stride"), 2), per_dim(q.arg("dilation"), 2)
        ranges = _tap_ranges(x.type.shape[2], oh, w.type.shape[2], sh, ph, dh) + \
            _tap_ranges(x.type.shape[3], ow, w.type.shape[3], sw, pw, dw)
        return (q, add) if all(lo <= hi for lo, hi in ranges) else None
    return (q, add) if per_dim(q.arg("stride"), 2) == (1, 1) and 2 * ph <= oh and 2 * pw <= ow else None


SPLITS = ("aten.split.Tensor", "aten.split_with_sizes.default")


def sink_past_splits(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """split(f(x, b)) -> f(x_i, b_i) for each piece i (WaveNet's gated conv: conv, its bias add,
    chunk into halves, tanh(a) * sigmoid(b)): each piece's f fuses into the kernel that reads the
    piece, where before f was a pass of its own over the whole tensor. An operand that varies
    along the split dim is sliced the same way."""
    A = torch.ops.aten

    def move(node, q, b):
        x = node.args[0]
        nd = x.type.ndim
        dim = node.arg("dim") % nd
        full = next(v for v in q.tensor_inputs() if v.type.shape == x.type.shape)
        pieces = b(node.op, full, *node.args[1:])
        pieces = pieces if isinstance(pieces, tuple) else (pieces,)
        replace, start = {}, 0
        for old, piece in zip(node.outputs, pieces):
            size = old.type.shape[dim]
            values = []
            for v in q.args:
                if v is full:
                    v = piece
                elif isinstance(v, Value) and v.type.ndim > 0:
                    dv = dim - (nd - v.type.ndim)        # broadcast from the right
                    if dv >= 0 and v.type.shape[dv] > 1:
                        v = b(A.slice.Tensor, v, dv, start, start + size)
                values.append(v)
            args, kwargs = _call_args(q, values)
            replace[old] = b(q.op, *args, **kwargs)
            start += size
        return replace

    _sink(graph, SPLITS, move, "split, so that the split reads its input and each piece fuses into the "
          "kernel that reads it", decisions)
    return graph


def _pointwise_after_extern(q: Node, users, live) -> bool:
    """q is a pointwise op of a chain of them, each read only by the next, over the result of an
    op that is not generated (a convolution): moved after a permute, the chain joins the kernel
    after it. A chain over a generated kernel's result stays where it is (it is fused there)."""
    while True:
        entry = ops.lookup(q.target)
        if entry is None or entry.kind != ops.POINTWISE or entry.align or len(q.outputs) != 1:
            return False
        full = [v for v in q.tensor_inputs() if v.type.shape == q.outputs[0].type.shape]
        if len(full) != 1 or full[0].producer is None:
            return False
        nxt = full[0].producer
        after = ops.lookup(nxt.target)
        if after is None or after.kind == ops.LOWER:
            return True
        if full[0] in live or len(users.get(full[0], [])) != 1:
            return False
        q = nxt


def elementwise_source(v: Value, limit: int = 8) -> tuple[Value, list[Node]]:
    """The full-size tensor that pointwise ops compute v from element by element (v itself when
    its producer is not such an op), and those ops, the first one first."""
    chain: list[Node] = []
    for _ in range(limit):
        p = v.producer
        entry = ops.lookup(p.target) if p is not None else None
        full = [a for a in p.tensor_inputs() if a.type.shape == v.type.shape] if entry is not None else []
        if entry is None or entry.kind != ops.POINTWISE or len(full) != 1:
            break
        chain.append(p)
        v = full[0]
    return v, chain[::-1]


def _taken(graph: Graph) -> set[str]:
    """The names in use: new nodes and values are named around them."""
    return {n.name for n in graph.nodes} | {v.name for v in graph.inputs} | \
        {v.name for n in graph.nodes for v in n.outputs}


def _replace_uses(graph: Graph, replace: dict[Value, Value]) -> None:
    """Every use of a key (node arguments, graph outputs, mutation sources) reads its value."""
    if not replace:
        return
    for n in graph.nodes:
        n.args = [_substitute(a, replace) for a in n.args]
    graph.outputs = [_substitute(v, replace) for v in graph.outputs]
    graph.mutations = [(_substitute(a, replace), o) for a, o in graph.mutations]


def _retyped(new: Value, old: Value) -> Value:
    if new.type.shape != old.type.shape or new.type.dtype != old.type.dtype:
        raise AssertionError(f"lowering of {old.name} gives {new.type}, not {old.type}")
    return new


def _substitute(v, replace):
    if isinstance(v, Value):
        return replace.get(v, v)
    if isinstance(v, list):
        return [_substitute(x, replace) for x in v]
    if isinstance(v, tuple):
        return tuple(_substitute(x, replace) for x in v)
    return v


def compute_again(chain: list[Node], b: Builder) -> dict:
    """The pointwise ops `chain` (first one first) computed again by Builder b: {old value: new}."""
    again: dict = {}
    for p in chain:
        args, kwargs = _call_args(p, [_substitute(a, again) for a in p.args])
        again[p.outputs[0]] = b(p.op, *args, **kwargs)
    return again


def only_reduced_or_pooled(readers: list[Node]) -> bool:
    """Every reader is a reduction or norm (a row op) or pooling (a window op), none pointwise."""
    return bool(readers) and all(getattr(ops.lookup(u.target), "kind", None) in (ops.ROW, ops.WINDOW)
                                 for u in readers)


def softmax_split_on() -> bool:
    """split_reduced_softmax and plan_rows' side of it: on unless FUSEFORGE_SPLIT_SOFTMAX=0."""
    import os
    return os.environ.get("FUSEFORGE_SPLIT_SOFTMAX") != "0"


def split_reduced_softmax(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """A float32 softmax that only reductions or pooling read (level2/039's mean over the pixels
    of a softmax over the channels) becomes its statistics and its application (ops/rows.py's
    softmax_statistics and softmax_applied), which its readers compute as they load it (plan_rows
    leaves it to them), x too from what pointwise ops compute it from (the convolution): nothing
    of full size is written between them (torch.compile's two kernels do the same; level2/038
    0.97, 039 0.94 of their times, bench/session15/ab_softmax_h100.json). FUSEFORGE_SPLIT_SOFTMAX=0
    turns it off."""
    from .ops.rows import SOFTMAXES, softmax_applied, softmax_statistics
    if not softmax_split_on():
        return graph
    users, live, taken = graph.users(), graph.live_out(), _taken(graph)
    for node in list(graph.nodes):
        if node.target not in SOFTMAXES or len(node.outputs) != 1:
            continue
        x, y = node.arg("self"), node.outputs[0]
        readers = users.get(y, [])
        if y in live or x.type.dtype != torch.float32 or y.type.dtype != torch.float32 or \
                not only_reduced_or_pooled(readers):
            continue
        b = Builder(node, taken)
        m, s = softmax_statistics(node, b)
        again = compute_again(elementwise_source(x)[1], b)
        y_again = softmax_applied(b, again.get(x, x), m, s)
        at = graph.nodes.index(node)
        graph.nodes[at:at + 1] = b.nodes
        _replace_uses(graph, {y: y_again})
        if decisions is not None:
            decisions.append(f"{node.name} ({node.target}): its statistics (max, sum of exp), then exp(x - max) / sum "
                             f"computed again by {', '.join(u.name for u in readers)} (FUSEFORGE_SPLIT_SOFTMAX=0 keeps it whole)")
    return graph
