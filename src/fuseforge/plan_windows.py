"""plan_windows: one kernel per pooling op (or depthwise convolution, ops/windows.depthwise), with
the pointwise ops around it fused.

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
from .plan_fusion import FusedOps, absorb_epilogue, absorb_prologue, each_spec, entry_spec, external_inputs, \
    needed_outside


@dataclass(eq=False)
class WindowKernel(FusedOps):
    name: str
    nodes: list[Node]            # prologue, the window op, epilogue (graph order)
    node: Node                   # the window op
    window: Window
    prologue: list[Node]
    epilogue: list[Node]
    inputs: list[Value]
    outputs: list[Value]

    @property
    def frame(self) -> tuple[int, ...]:
        """The shape of the pooled input (where the prologue runs)."""
        return self.window.x.type.shape


def window_of(node: Node) -> Window | str:
    return entry_spec(node, ops.WINDOW, "window op")


def form_window_kernels(graph, groups, group_of, closed, users, live, taken, decisions,
                        why_extern: dict) -> list[WindowKernel]:
    """A window kernel for every window op not taken by a row kernel (global pooling is a
    mean); the pointwise groups it absorbs are removed from `groups`."""
    kernels = []
    # (depthwise convolutions: window ops by their registry entry's `window`, ops/windows.depthwise)
    convs = [(n, spec) for n in graph.nodes if n not in taken and (e := ops.lookup(n.target)) is not None
             and e.window is not None and not isinstance(spec := e.window(n), str)]
    for node, spec in list(each_spec(graph, ops.WINDOW, window_of, why_extern, decisions, skip=taken)) + convs:
        if any(v in live or users.get(v) for v in node.outputs[1:]):
            why_extern[node] = "its indices are used (only pooled values are generated)"
            decisions.append(f"{node.name} ({node.target}): extern, {why_extern[node]}")
            continue
        x, y = spec.x, node.outputs[0]
        members = {node}
        prologue = absorb_prologue(x, members, groups, group_of, closed, users, live)
        if prologue:
            decisions.append(f"{node.name}: pointwise group {prologue[0].name}… fused into its loads")
        epilogue = absorb_epilogue(y, members, groups, group_of, closed, users, live)
        if epilogue:
            decisions.append(f"{node.name}: pointwise group {epilogue[0].name}… fused into its stores")
        nodes = prologue + [node] + epilogue
        inputs = external_inputs(nodes, members)   # (a depthwise convolution's weight among them)
        outputs = [n.outputs[0] for n in [node] + epilogue if needed_outside(n, members, users, live)]
        kernels.append(WindowKernel("", nodes, node, spec, prologue, epilogue, inputs, outputs))
    return kernels
