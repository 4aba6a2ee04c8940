"""lower: rewrite ops whose registry entry has a lowering into other registry ops, before planning.

Some ops reduce twice: cross entropy is a statistic per row (logsumexp and the target's logit)
and then a mean over the rows; triplet margin loss is two distances per row and then a mean.
No one kernel of the row kind does both (the rows are independent teams), so the entry says
how to write the op with ops that have kernels: per-row ops that fuse into one row kernel,
then a reduction over the rows that becomes a second one. Every node built here is a real ATen
op with eager's own semantics, so one the planner cannot generate still runs as an extern.

A lowering is `fn(node, builder) -> outputs` (one Value per output of the node) or a string
saying why the node stays as it is. Output types come from running the op on meta tensors.
"""
from __future__ import annotations

import torch

from . import ops
from .capture import bind_arguments
from .graph import Graph, Node, Value


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

        def meta(v):
            if isinstance(v, Value):
                t = v.type
                return torch.empty_strided(t.shape, t.strides, dtype=t.dtype, device="meta")
            if isinstance(v, (list, tuple)):
                return [meta(x) for x in v]
            return v

        from .capture import _tensor_type
        result = op(*[meta(v) for v in args], **{key: meta(v) for key, v in kwargs.items()})
        results = result if isinstance(result, (tuple, list)) else (result,)
        node.outputs = [Value(name if len(results) == 1 else f"{name}_{i}", _tensor_type(r, name),
                              producer=node, index=i) for i, r in enumerate(results)]
        self.nodes.append(node)
        return node.outputs[0] if len(results) == 1 else tuple(node.outputs)


def lower(graph: Graph, decisions: list[str] | None = None) -> Graph:
    """Lower every node whose entry lowers it (repeatedly: a lowering may build lowered ops)."""
    taken = {n.name for n in graph.nodes} | {v.name for v in graph.inputs} | \
        {v.name for n in graph.nodes for v in n.outputs}
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
            if isinstance(outs, str):
                if decisions is not None:
                    decisions.append(f"{node.name} ({node.target}): not lowered, {outs}")
                nodes.append(node)
                continue
            outs = outs if isinstance(outs, (tuple, list)) else (outs,)
            for old, new in zip(node.outputs, outs):
                replace[old] = _retyped(new, old)
            nodes.extend(b.nodes)
            changed = True
            if decisions is not None:
                decisions.append(f"{node.name} ({node.target}): lowered to "
                                 f"{', '.join(n.target.removeprefix('aten.') for n in b.nodes)}")
        graph.nodes = nodes
        graph.outputs = [_substitute(v, replace) for v in graph.outputs]
        graph.mutations = [(_substitute(new, replace), old) for new, old in graph.mutations]
        if not changed:
            break
    return graph


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
