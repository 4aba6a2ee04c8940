"""replay: whether the generated forward is replayed as a CUDA graph (the host runtime's
ff::replayed, codegen/cpp.py) or runs op by op.

Op by op, a call costs the host a launch per kernel, a dispatch per ATen extern and an
allocation per result; replayed, one graph launch. The graph is captured on the second call in a
row with the same inputs and state (their addresses and shapes, the state's versions), so every
call still computes everything from the memory it reads (state the forward updates in place,
batch norm's running statistics in training mode, too: the replay updates it and moves its
version counter as a call op by op does). That needs a forward that does the same work on every
call: only the ATen externs below, which neither synchronize with the host nor draw random numbers
(views, convolutions, products, a few pure ops, attention and recurrent layers without dropout);
any other extern runs the forward op by op. Measured on the H100 (bench/session20): 13 convolution
problems 0.956-1.000x the GPU time op by op, host time 0.009-0.044 ms from 0.032-0.708; the
recurrent networks (level3/013-015, host-bound op by op) 0.23-0.39x.
FUSEFORGE_REPLAY=0 turns it off (for measuring the difference).
"""
from __future__ import annotations

import os

from .graph import USER_INPUT

VIEWS = {"view", "_unsafe_view", "reshape", "transpose", "permute", "select", "unsqueeze", "squeeze",
         "expand", "split", "slice"}
CAPTURE_SAFE = VIEWS | {"conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
                        "flip", "matmul", "linear", "triu", "tril", "diag", "mean", "sum", "cat", "slice_scatter", "zeros",
                        "new_zeros", "ones", "full", "zeros_like", "ones_like", "full_like"}
# safe without dropout (their `dropout` argument 0, or not training)
SAFE_WITHOUT_DROPOUT = {"scaled_dot_product_attention", "lstm", "gru", "rnn_tanh", "rnn_relu"}


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
        if name in SAFE_WITHOUT_DROPOUT and not _dropout(step.node):
            continue
        if name not in CAPTURE_SAFE:
            return f"extern {step.node.target} is not known to be safe in a CUDA graph"
    return None


def _dropout(node) -> bool:
    """Whether an attention or recurrent extern draws random numbers (dropout while training)."""
    names = {a.name for a in node.schema.arguments}
    p = node.arg("dropout_p" if "dropout_p" in names else "dropout")
    return bool(p) and ("train" not in names or node.arg("train") is not False)
