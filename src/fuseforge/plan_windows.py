"""plan_windows: one kernel per pooling op, with the pointwise ops around it fused.

A window kernel runs one thread per output element of the pooling op. Its prologue is the
pointwise group that computes the pooled input, evaluated per window element as it is read
(so the group's result never goes to memory); its epilogue is the pointwise group that
consumes the pooled value over the output's shape. Both are taken only when nothing else
needs their intermediate values (a prologue value is computed once per window that covers
it, never stored) and the fused set reads nothing that depends on itself.
"""
from __future__ import annotations

from dataclasses import dataclass

from . import ops
from .graph import Node, Value
from .ops.windows import Window


@dataclass(eq=False)
class WindowKernel:
    name: str
    nodes: list[Node]            # prologue, the window op, epilogue (graph order)
    node: Node                   # the window op
    window: Window
    prologue: list[Node]
    epilogue: list[Node]
    inputs: list[Value]
    outputs: list[Value]

    @property
    def shape(self) -> tuple[int, ...]:
        """The iteration space: the pooled output."""
        return self.node.outputs[0].type.shape

    @property
    def frame(self) -> tuple[int, ...]:
        """The shape of the pooled input (where the prologue runs)."""
        return self.window.x.type.shape

    def summary(self) -> str:
        from .plan import short_name
        return " → ".join(short_name(n) for n in self.nodes)


def needed_outside(n: Node, members, users, live) -> bool:
    return n.outputs[0] in live or any(u not in members for u in users.get(n.outputs[0], []))


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


def window_of(node: Node) -> Window | str:
    entry = ops.lookup(node.target)
    if entry is None or entry.kind != ops.WINDOW:
        return "not a window op"
    spec = entry.expr(node)
    if not isinstance(spec, str) and not node.outputs[0].type.is_dense():
        return "a pooled output that is not dense"
    return spec


def form_window_kernels(graph, groups, group_of, closed, users, live, taken, decisions,
                        why_extern: dict) -> list[WindowKernel]:
    """A window kernel for every window op not taken by a row kernel (global pooling is a
    mean); the pointwise groups it absorbs are removed from `groups`."""
    kernels = []
    for node in graph.nodes:
        entry = ops.lookup(node.target)
        if node in taken or entry is None or entry.kind != ops.WINDOW:
            continue
        spec = window_of(node)
        if isinstance(spec, str):
            why_extern[node] = spec
            decisions.append(f"{node.name} ({node.target}): extern, {spec}")
            continue
        if any(v in live or users.get(v) for v in node.outputs[1:]):
            why_extern[node] = "its indices are used (only pooled values are generated)"
            decisions.append(f"{node.name} ({node.target}): extern, {why_extern[node]}")
            continue
        x, y = spec.x, node.outputs[0]
        members = {node}
        prologue: list[Node] = []
        g = group_of.get(x.producer)
        # the prologue's values, x included, are read by nothing but the group and this op
        if g is not None and g in groups and g.shape == x.type.shape and closed(set(g.nodes) | members) and \
                not any(needed_outside(n, set(g.nodes) | members, users, live) for n in g.nodes):
            prologue = list(g.nodes)
            members |= set(prologue)
            groups.remove(g)
            decisions.append(f"{node.name}: pointwise group {prologue[0].name}… fused into its loads")
        epilogue = absorb_epilogue(y, members, groups, group_of, closed, users, live)
        if epilogue:
            decisions.append(f"{node.name}: pointwise group {epilogue[0].name}… fused into its stores")
        nodes = prologue + [node] + epilogue
        inputs = external_inputs(nodes, members)
        outputs = [n.outputs[0] for n in [node] + epilogue if needed_outside(n, members, users, live)]
        kernels.append(WindowKernel("", nodes, node, spec, prologue, epilogue, inputs, outputs))
    return kernels
