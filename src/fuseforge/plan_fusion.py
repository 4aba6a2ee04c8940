"""plan_fusion: what the planners of kernels around one op (window, scan, GEMM) share: the
registry lookup of the op's spec, and taking the pointwise groups before it (into its loads)
and after it (into its stores)."""
from __future__ import annotations

from . import ops
from .graph import Node, Value


class FusedOps:
    """A kernel around one op (`node`): its iteration space is that op's result, its summary
    the ops in order."""
    nodes: list[Node]
    node: Node

    @property
    def shape(self) -> tuple[int, ...]:
        return self.node.outputs[0].type.shape

    def summary(self) -> str:
        from .plan import short_name
        return " → ".join(short_name(n) for n in self.nodes)


def needed_outside(n: Node, members, users, live) -> bool:
    return n.outputs[0] in live or any(u not in members for u in users.get(n.outputs[0], []))


def epilogue_math(epilogue) -> int:
    """Transcendental functions per element in a fused epilogue group (the registry's
    `transcendentals`): what a GEMM's or a convolution's epilogue costs after its main loop."""
    return sum(ops.lookup(n.target).transcendentals for n in epilogue.nodes) if epilogue else 0


def find_epilogue(y: Value, members: set, groups, group_of, closed, users, live):
    """The pointwise group that consumes `y` over y's shape and can join the kernel (members)
    that computes y, or None: nothing outside may need one of its values of a smaller shape (it
    would be written many times), and the fused set must read nothing that depends on itself."""
    for u in users.get(y, []):
        h = group_of.get(u)
        if h is not None and h in groups and h.shape == y.type.shape and closed(members | set(h.nodes)) \
                and all(n.outputs[0].type.shape == y.type.shape for n in h.nodes
                        if needed_outside(n, members | set(h.nodes), users, live)):
            return h
    return None


def absorb_prologue(x: Value, members: set, groups, group_of, closed, users, live) -> list[Node]:
    """The pointwise group that computes `x`, taken into the kernel (members) that reads x
    element by element as its loads, or []: it must span x's shape, and its values, x included,
    must be read by nothing but the group and the kernel (they are recomputed, never stored)."""
    g = group_of.get(x.producer)
    if g is not None and g in groups and g.shape == x.type.shape and closed(set(g.nodes) | members) and \
            not any(needed_outside(n, set(g.nodes) | members, users, live) for n in g.nodes):
        members |= set(g.nodes)
        groups.remove(g)
        return list(g.nodes)
    return []


def entry_spec(node: Node, kind: str, noun: str, dense: bool = True):
    """What the registry entry of kind `kind` makes of the node (a spec or a reason string);
    with `dense`, a result that is not dense is a reason."""
    entry = ops.lookup(node.target)
    if entry is None or entry.kind != kind:
        return f"not a {noun}"
    spec = entry.expr(node)
    if dense and not isinstance(spec, str) and not node.outputs[0].type.is_dense():
        return "a result that is not dense"
    return spec


def each_spec(graph, kind: str, spec_of, why_extern: dict, decisions: list, skip=()):
    """(node, spec) for every node of this registry kind whose spec_of is a spec; the others
    are logged as externs with spec_of's reason."""
    for node in graph.nodes:
        entry = ops.lookup(node.target)
        if node in skip or entry is None or entry.kind != kind:
            continue
        spec = spec_of(node)
        if isinstance(spec, str):
            why_extern[node] = spec
            decisions.append(f"{node.name} ({node.target}): extern, {spec}")
            continue
        yield node, spec


def absorb_epilogue(y: Value, members: set, groups, group_of, closed, users, live) -> list[Node]:
    """find_epilogue's group taken: removed from `groups`, its nodes joined to `members`."""
    h = find_epilogue(y, members, groups, group_of, closed, users, live)
    if h is None:
        return []
    members |= set(h.nodes)
    groups.remove(h)
    return list(h.nodes)


def external_inputs(nodes: list[Node], members: set) -> list[Value]:
    """The tensors the fused nodes read from outside (inline constants excluded), in order."""
    from .plan import inline_constant
    inputs: list[Value] = []
    for n in nodes:
        for v in n.tensor_inputs():
            if v.producer not in members and not inline_constant(v) and v not in inputs:
                inputs.append(v)
    return inputs
