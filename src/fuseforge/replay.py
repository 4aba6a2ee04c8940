"""replay: whether the generated forward is replayed as a CUDA graph (the host runtime's
ff::replayed, codegen/cpp.py) or runs op by op.

Op by op, a call costs the host a launch per kernel, a dispatch per ATen extern and an
allocation per result; replayed, one graph launch. The graph is captured on the second call in a
row with the same inputs and state (their addresses and shapes, the state's versions), so every
call still computes everything from the memory it reads (state the forward updates in place,
batch norm's running statistics in training mode, too: the replay updates it and moves its
version counter as a call op by op does). That needs a forward that does the same work on every
call: only the ATen externs below, which neither synchronize with the host nor draw random numbers
(views, convolutions, products, a few pure ops); any other extern runs the forward op by op.
FUSEFORGE_REPLAY=0 turns it off (for measuring the difference).
"""
from __future__ import annotations

import os

from .graph import USER_INPUT

VIEWS = {"view", "_unsafe_view", "reshape", "transpose", "permute", "select", "unsqueeze", "squeeze",
         "expand", "split", "slice"}
CAPTURE_SAFE = VIEWS | {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                        "matmul", "linear", "triu", "tril", "diag", "mean", "cat"}


def why_not_replayed(plan) -> str | None:
    """Why the plan's forward runs op by op (None: it is replayed as a CUDA graph)."""
    if os.environ.get("FUSEFORGE_REPLAY") == "0":
        return "FUSEFORGE_REPLAY=0"
    if any(old.role == USER_INPUT for _, old in plan.graph.mutations):
        return "it updates an input in place"
    for step in plan.externs:
        if step.cat_buffer:   # (no ATen call)
            continue
        name = step.node.target.split(".")[1]
        if name == "scaled_dot_product_attention" and not step.node.arg("dropout_p"):
            continue
        if name not in CAPTURE_SAFE:
            return f"extern {step.node.target} is not known to be safe in a CUDA graph"
    return None
