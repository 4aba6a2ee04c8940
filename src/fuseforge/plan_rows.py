"""plan_rows: row kernels, one per set of reductions/norms that share rows.

A row kernel iterates a space (the reduced tensor's shape, or a view of it) split into
kept dims (one row per combination) and reduced axes (the row's elements). Around the
reductions it computes, per element, the pointwise ops over the whole space (before a
reduction: fused into its loads; after a norm: into its stores) and, per row, the pointwise
ops on reduced values (mean → relu → * scale). Every value the kernel reads or writes gets
its strides over the space, so the renderer only needs coordinates.

Placement rules, checked op by op:
- an op over the full frame (the reduced tensor's shape) is an element op;
- an op on reduced values is a row op when each of its dims runs along a kept dim;
- a reduction joins when it reduces a full-frame value over the same axes, or when all it
  reduces has size 1 (then it is a row op);
- a tensor from outside is read by broadcast; a row value read by an element op must be
  broadcast along the reduced axes exactly as the op's own broadcast says.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from . import ops
from .graph import Node, Value
from .ops.rows import Recipe, Stage

ELEM, ROW = "elem", "row"
# A row is one team of threads (at most a block). When there are too few rows to fill the GPU
# and they are long, each row is split over several blocks (one launch per stage level).
SPLIT_BELOW_ROWS = 264           # two rows per SM of an H100
SPLIT_MIN_LENGTH = 8192
SPLIT_TARGET_BLOCKS = 1024
SPLIT_MIN_CHUNK = 4096
OUTER_ROWS_PER_BLOCK = 32        # the "outer" schedule puts up to 32 rows side by side in a block
# The outer schedule's blocks are smaller (256 threads: 32 rows x 8), its chunks too (a block reads
# 32 rows of a chunk): its split rows target 8 blocks per SM of an H100, and a merge launch per
# level combines a row's partials once. Measured on H200s (bench/pixel_rows, FUSEFORGE_CL_ROWS=all):
# a batch norm over 64 channels of 1M pixels (level2/001) 0.694 -> 0.636 ms end to end against
# 3 splits of 1024 threads; means over pixels (016, 021, 027) within 3 % either way.
OUTER_TARGET_BLOCKS = 1056
OUTER_MIN_CHUNK = 512


def splits_for(blocks: int, length: int, target: int = SPLIT_TARGET_BLOCKS, min_chunk: int = SPLIT_MIN_CHUNK,
               one_wave: bool = False) -> int:
    """How many blocks share one row (`blocks`: the blocks the rows need unsplit). `one_wave`: at
    most `target` blocks in all (the outer schedule's target is the blocks an H100 holds at once:
    one more than that waits for a whole block's time, latency-bound alone on its SM)."""
    if blocks >= SPLIT_BELOW_ROWS or length < SPLIT_MIN_LENGTH:
        return 1
    return max(1, min(target // blocks if one_wave else -(-target // blocks), length // min_chunk))


def outer_rows_per_block(rows: int) -> int:
    """Rows side by side in a block of the outer schedule: OUTER_ROWS_PER_BLOCK, or all of them
    where they are 8 to 63 (not 32), so that a warp's step reads whole rows one after the other.
    Tiles of 32 of a channels-last batch norm's 40 channels left 24 of the second tile's 32 lanes
    idle and its warps reading 32 bytes of each 160-byte pixel: level3/008's statistics of
    [64, 40, 56, 56] took 41 us against 15 for torch.compile's on an H200 (bench/session30/probe);
    16 channels (level2/043) left half of every warp idle."""
    return rows if 8 <= rows < 2 * OUTER_ROWS_PER_BLOCK else OUTER_ROWS_PER_BLOCK


def schedule_of(k) -> tuple[list, list, str]:
    """(kept dims, reduced dims) outermost first in the main tensor's memory order, and the
    schedule: "inner" when the innermost moving dim is reduced, else "outer"."""
    return schedule_for(k.space, k.axes, k.strides[k.main])


def schedule_for(space, axes, st) -> tuple[list, list, str]:
    order = sorted(range(len(space)), key=lambda d: (-st[d], d))
    kept = [d for d in order if d not in axes]
    red = [d for d in order if d in axes]
    moving = [d for d in order if space[d] > 1 and st[d] != 0]
    inner = bool(moving) and moving[-1] in axes
    return kept, red, ("inner" if inner else "outer")


def runs_along_elements(k, v) -> bool:
    """Whether v's innermost moving dim is a reduced one (NCHW written by rows over the pixels)."""
    st = k.strides[v]
    moving = [d for d in range(len(k.space)) if k.space[d] > 1 and st[d] != 0]
    return bool(moving) and min(moving, key=lambda d: (st[d], -d)) in k.axes


# A one-pass reduction over strided rows with nothing fused to it: the outer schedule beat eager
# on rows of 2048 (level1/065-076: 1.08-1.30x, bench/session6/rows_strided), but a mean over rows
# of 256 (level2/055) took 70 us more than eager's; below ALONE_MIN_LENGTH it stays eager's.
ALONE_MIN_LENGTH = 512


@dataclass(eq=False)
class RowKernel:
    name: str
    nodes: list[Node]
    space: tuple[int, ...]
    axes: tuple[int, ...]
    inputs: list[Value]
    outputs: list[Value]
    phase: dict                      # Value -> "elem" | "row", every value read or computed
    strides: dict                    # Value -> strides over the space, every value read or written
    recipes: dict                    # reduction Node -> Recipe (over the kernel's space)
    trivial: dict                    # reduction Node -> Recipe over size-1 axes: a row op
    main: Value                      # the first reduced tensor: its layout picks the schedule
    splits: int = 1                  # blocks per row (few long rows)

    @property
    def kept(self) -> tuple[int, ...]:
        return tuple(d for d in range(len(self.space)) if d not in self.axes)

    @property
    def rows(self) -> int:
        return math.prod(self.space[d] for d in self.kept)

    @property
    def length(self) -> int:
        return math.prod(self.space[d] for d in self.axes)

    def summary(self) -> str:
        from .plan import short_name
        return " → ".join(short_name(n) for n in self.nodes)


def recipe_of(node: Node) -> Recipe | str:
    """The node's row recipe, or why it has none."""
    entry = ops.lookup(node.target)
    recipe = None if entry is None else entry.expr if entry.kind == ops.ROW else entry.row
    if recipe is None:
        return "not a row op"
    result = recipe(node)
    if isinstance(result, str):
        return result
    for v in [result.x] + [o.value for o in result.operands.values()] + node.outputs:
        if v.type.dtype not in ops.KERNEL_DTYPES:
            return f"dtype {v.type.dtype} not generated yet"
    return result


def operand_space_strides(space, v: Value, dims) -> tuple | None:
    """Strides over `space` of a tensor whose dim j runs along space dim dims[j] (None: size
    1; a tuple: several space dims, split row-major)."""
    out = [0] * len(space)
    for j, d in enumerate(dims):
        size, st = v.type.shape[j], v.type.strides[j]
        if d is None or size == 1:
            continue
        split = d if isinstance(d, tuple) else (d,)
        if math.prod(space[k] for k in split) != size:
            return None
        for k in reversed(split):
            out[k] = st
            st *= space[k]
    return tuple(out)


class RowGroup:
    def __init__(self, recipe: Recipe):
        self.frame = recipe.x.type.shape          # shape of the full-frame values
        self.space, self.axes = recipe.space, recipe.axes
        self.view = self.space != self.frame
        self.nodes: list[Node] = []
        self.fdims: dict[Value, tuple] = {}       # values computed here: frame dim of each dim
        self.space_dims: dict[Value, tuple] = {}  # row results over a view space: space dim of each dim
        self.phase: dict[Value, str] = {}
        self.strides: dict[Value, tuple] = {}
        self.recipes: dict[Node, Recipe] = {}
        self.trivial: dict[Node, Recipe] = {}
        self.main = recipe.x

    # --- strides ---------------------------------------------------------------------------
    def _to_space(self, v: Value, fdims) -> tuple | None:
        fs = [0] * len(self.frame)
        for j, d in enumerate(fdims):
            if d is not None and v.type.shape[j] > 1:
                if fs[d]:
                    return None
                fs[d] = v.type.strides[j]
        if not self.view:
            return tuple(fs)
        try:
            return tuple(torch.empty_strided(self.frame, fs, device="meta").view(self.space).stride())
        except RuntimeError:
            return None

    def _read(self, v: Value, strides, tx: dict) -> bool:
        """Record an outside tensor read with these space strides (one layout per tensor)."""
        if strides is None:
            return False
        known = tx["strides"].get(v, self.strides.get(v))
        if known is not None and known != strides:
            return False
        tx["strides"][v] = strides
        tx["phase"][v] = ROW if all(strides[d] == 0 for d in self.axes) else ELEM
        return True

    def _fdims(self, v, tx):
        return tx["fdims"].get(v, self.fdims.get(v))

    def _phase(self, v, tx):
        return tx["phase"].get(v, self.phase.get(v))

    # --- placement -------------------------------------------------------------------------
    def try_add(self, nodes: list[Node], recipes: dict, scalar: bool = False) -> bool:
        """Place all nodes (in order) or none. `scalar`: 0-d pointwise ops of outside values may
        join as side ops (join_scalar_groups)."""
        tx = {"fdims": {}, "space_dims": {}, "phase": {}, "strides": {}, "recipes": {}, "trivial": {},
              "scalar": scalar}
        for node in nodes:
            if any(v in self.space_dims or v in tx["space_dims"] for v in node.tensor_inputs()):
                return False   # (a view space's row results are written, not read here)
            ok = self._place_row_op(node, recipes[node], tx) if node in recipes \
                else self._place_pointwise(node, tx)
            if not ok:
                return False
        self.nodes.extend(nodes)
        for key in ("fdims", "space_dims", "phase", "strides", "recipes", "trivial"):
            getattr(self, key).update(tx[key])
        return True

    def _place_pointwise(self, node: Node, tx) -> bool:
        from .plan import inline_constant
        out = node.outputs[0]
        shape = out.type.shape
        inside = [v for v in node.tensor_inputs() if self._fdims(v, tx) is not None]
        if shape == self.frame:
            out_fd, phase = tuple(range(len(shape))), ELEM
        elif shape == () and not inside and tx.get("scalar"):   # a side op: every row computes the same
            out_fd, phase = (), ROW
        else:
            if self.view or not inside or any(self._phase(v, tx) == ELEM for v in inside):
                return False
            out_fd = [None] * len(shape)
            for v in inside:
                fd = self._fdims(v, tx)
                for j, d in enumerate(ops.operand_dims(node, v, len(shape))):
                    if d is None:
                        continue
                    if out_fd[d] is not None and out_fd[d] != fd[j]:
                        return False
                    out_fd[d] = fd[j]
            if any(out_fd[k] is None and shape[k] > 1 for k in range(len(shape))) or \
                    any(d in self.axes for d in out_fd if d is not None):
                return False
            out_fd, phase = tuple(out_fd), ROW
        for v in node.tensor_inputs():
            if inline_constant(v):
                continue
            want = tuple(None if d is None else out_fd[d] for d in ops.operand_dims(node, v, len(shape)))
            fd = self._fdims(v, tx)
            if fd is not None:
                if any(w is not None and w != f for w, f in zip(want, fd)):
                    return False
            elif not self._read(v, self._to_space(v, want), tx):
                return False
        tx["fdims"][out] = out_fd
        tx["phase"][out] = phase
        for v in node.outputs[1:]:     # unused extra results (first_result_only entries)
            tx["phase"][v] = phase
        return True

    def _place_row_op(self, node: Node, recipe: Recipe, tx) -> bool:
        x = recipe.x
        fd = self._fdims(x, tx)
        if fd is not None and self._phase(x, tx) == ROW:
            return self._place_trivial(node, recipe, fd, tx)
        if (recipe.space, recipe.axes) != (self.space, self.axes) or x.type.shape != self.frame:
            return False
        identity = tuple(range(len(self.frame)))
        if fd is not None:
            if fd != identity:
                return False
        elif not self._read(x, self._to_space(x, identity), tx):
            return False
        for op in recipe.operands.values():
            if not self._read(op.value, operand_space_strides(self.space, op.value, op.dims), tx):
                return False
        for v in node.outputs:
            res = recipe.results.get(v.index)
            if res is None:
                return False
            if res.phase == ELEM:
                tx["fdims"][v], tx["phase"][v] = identity, ELEM
            elif self.view:   # over the space's own dims (a group norm's statistics per group)
                if operand_space_strides(self.space, v, res.dims) is None:
                    return False
                tx["space_dims"][v], tx["phase"][v] = res.dims, ROW
            else:
                tx["fdims"][v], tx["phase"][v] = res.dims, ROW
        tx["recipes"][node] = recipe
        return True

    def _place_trivial(self, node: Node, recipe: Recipe, fd, tx) -> bool:
        """A reduction over size-1 dims of a row value: computed once per row."""
        if recipe.operands or recipe.space != recipe.x.type.shape or \
                any(recipe.space[d] != 1 for d in recipe.axes):
            return False
        for v in node.outputs:
            res = recipe.results.get(v.index)
            if res is None:
                return False
            dims = tuple(range(len(fd))) if res.phase == ELEM else res.dims
            tx["fdims"][v] = tuple(None if d is None else fd[d] for d in dims)
            tx["phase"][v] = ROW
        tx["trivial"][node] = recipe
        return True

    def _full(self, st) -> bool:
        return st is not None and all(st[d] != 0 for d in range(len(self.space)) if self.space[d] > 1)

    def main_strides(self, written=()) -> tuple | None:
        """The layout that picks the schedule: the main tensor's strides over the space where the
        kernel reads it. Where pointwise ops here compute it, from a full-size tensor read in one
        layout and written in another (`written`: the full-size outputs' strides), the outer
        schedule when either layout gives it, else the layout it is read in, else its own type's.
        The outer schedule covers rows x elements in a block: the side that runs along the rows is
        coalesced as it is, the other goes through a shared-memory tile (codegen/rows.py). Both
        inner: a norm reads its input twice and writes once. Measured on an H100: suite level2/022,
        a softmax over the channels of a channels-last conv written NCHW, took 0.53 ms on the
        input's (inner) schedule, its whole model 0.62 ms on the output's (outer) one
        (bench/conv_final); level2/002, a group norm of a channels-last conv written NCHW, took
        2.25 ms for the whole model on the output's schedule (H200, bench/conv_cl_rows) and 1.21
        on the input's (H100, bench/pixel_rows/a6f7499); with NCHW, which it keeps, 1.05."""
        if self.main in self.strides:
            return self.strides[self.main]
        read = [st for v, st in self.strides.items() if self.phase.get(v) == ELEM and self._full(st)]
        found = read + [st for st in written if self._full(st)]
        for st in found:
            if schedule_for(self.space, self.axes, st)[2] == "outer":
                return st
        return found[0] if found else self._to_space(self.main, tuple(range(len(self.frame))))

    # --- the kernel ------------------------------------------------------------------------
    def kernel(self, users, live) -> RowKernel:
        members = set(self.nodes)
        inputs, outputs = [], []
        for node in self.nodes:
            for v in node.tensor_inputs():
                if v in self.strides and v not in inputs:
                    inputs.append(v)
        strides = dict(self.strides)
        for node in self.nodes:
            for v in node.outputs:
                if v in live or any(u not in members for u in users.get(v, [])):
                    outputs.append(v)
                    strides[v] = operand_space_strides(self.space, v, self.space_dims[v]) \
                        if v in self.space_dims else self._to_space(v, self.fdims[v])
        # the layout the main tensor has (or would have): it picks the schedule
        strides.setdefault(self.main, self.main_strides(
            [strides[v] for v in outputs if self.phase.get(v) == ELEM]))
        k = RowKernel("", list(self.nodes), self.space, self.axes, inputs, outputs,
                      dict(self.phase), strides, dict(self.recipes), dict(self.trivial), self.main)
        inner = schedule_of(k)[2] == "inner"
        k.splits = splits_for(k.rows, k.length) if inner else \
            splits_for(-(-k.rows // outer_rows_per_block(k.rows)), k.length, OUTER_TARGET_BLOCKS, OUTER_MIN_CHUNK,
                       one_wave=os.environ.get("FUSEFORGE_OUTER_ONE_WAVE", "1") != "0")
        return k


def _read_layout(v: Value) -> tuple:
    """The strides of the full-size tensor v is read from (through pointwise ops computing it
    element by element). Siblings read in different layouts stay apart: one kernel has one
    schedule (a ResNet block's batch norms of a channels-last 3x3 and an NCHW 1x1 convolution)."""
    from .lower import elementwise_source
    return elementwise_source(v)[0].type.strides


def form_row_groups(graph, groups, group_of, closed, users, live, decisions,
                    why_extern: dict) -> list[RowGroup]:
    """Turn reductions into row groups and pull the pointwise groups around them in.

    `groups`/`group_of` are the pointwise groups (their `nodes`); a pointwise group that joins
    a row group is removed from `groups`. One sweep in graph order: a pointwise group is
    offered to the row groups it reads from when its first node comes up; a reduction joins
    the row group that computes its input over the same axes, or starts one that takes its
    input's pointwise group as prologue."""
    position = {n: i for i, n in enumerate(graph.nodes)}
    row_of: dict[Node, RowGroup] = {}
    rows: list[RowGroup] = []

    def producers(nodes):
        found = []
        for n in nodes:
            for v in n.tensor_inputs():
                g = row_of.get(v.producer)
                if g is not None and g not in found:
                    found.append(g)
        return found

    def join(rg: RowGroup, nodes, recipes) -> bool:
        if not closed(set(rg.nodes) | set(nodes)):
            return False
        if not rg.try_add(sorted(nodes, key=position.__getitem__), recipes):
            return False
        rg.nodes.sort(key=position.__getitem__)
        for n in nodes:
            row_of[n] = rg
        return True

    def left_for_readers(g, rg: RowGroup) -> bool:
        """lower.split_reduced_softmax (FUSEFORGE_SPLIT_SOFTMAX=0 turns it off): a group that reads rg's row values
        and, of full size, only tensors in memory, and that only reductions and pooling read, is
        computed by those readers as they load it (a prologue), rather than written by rg."""
        from .lower import only_reduced_or_pooled, softmax_split_on
        if not softmax_split_on():
            return False
        members = set(g.nodes)
        outs = [n.outputs[0] for n in g.nodes if any(u not in members for u in users.get(n.outputs[0], []))]
        readers = [u for v in outs for u in users.get(v, []) if u not in members]
        full = g.nodes[-1].outputs[0].type.shape
        return only_reduced_or_pooled(readers) and not any(v in live for v in outs) and \
            not any(v.producer in rg.nodes and v.type.shape == full for n in g.nodes for v in n.tensor_inputs())

    for node in graph.nodes:
        if node in row_of:
            continue
        g = group_of.get(node)
        if g is not None:
            if g.nodes[0] is node and g in groups:
                for rg in producers(g.nodes):
                    if left_for_readers(g, rg):
                        decisions.append(f"{node.name}…: pointwise group left to the kernels that reduce or pool it")
                        continue
                    if join(rg, g.nodes, {}):
                        groups.remove(g)
                        decisions.append(f"{node.name}…: pointwise group joins the row kernel of "
                                         f"{rg.nodes[0].name}")
                        break
            continue
        recipe = recipe_of(node)
        if isinstance(recipe, str):
            continue
        placed = any(join(rg, [node], {node: recipe}) for rg in producers([node]))
        if placed:
            continue
        prologue = group_of.get(recipe.x.producer)
        # a sibling: a row group over the same rows reduces this one's input side by side (two
        # losses' statistics over the same rows, a count beside a sum), its prologue with it
        before = prologue.nodes if prologue is not None and prologue in groups and \
            all(n.outputs[0].type.shape == recipe.x.type.shape for n in prologue.nodes) else []
        for rg in rows:
            if (rg.space, rg.axes, rg.frame) == (recipe.space, recipe.axes, recipe.x.type.shape) and \
                    all(_read_layout(r.x) == _read_layout(recipe.x) for r in rg.recipes.values()) and \
                    join(rg, before + [node], {node: recipe}):
                if before:
                    groups.remove(prologue)
                placed = True
                decisions.append(f"{node.name}: reduced beside {rg.nodes[0].name}, over the same rows")
                break
        if placed:
            continue
        rg = RowGroup(recipe)
        if before and join(rg, before + [node], {node: recipe}):
            groups.remove(prologue)
        elif not join(rg, [node], {node: recipe}):
            why_extern[node] = "its inputs' layout does not fit a row kernel"
            decisions.append(f"{node.name} ({node.target}): extern, {why_extern[node]}")
            continue
        rows.append(rg)
    if os.environ.get("FUSEFORGE_SCALAR_SIDE", "1") != "0":
        join_scalar_groups(rows, groups, closed, position, decisions)
    kept = []
    for rg in rows:
        node, main = rg.nodes[0], rg.main_strides()
        recipe, length = rg.recipes.get(node), math.prod(rg.space[a] for a in rg.axes)
        if len(rg.nodes) == 1 and main is not None and schedule_for(rg.space, rg.axes, main)[2] == "outer" and \
                all(rg.phase.get(v) == ROW for v in node.outputs) and length < ALONE_MIN_LENGTH and \
                recipe is not None and sum(isinstance(step, Stage) for step in recipe.steps) == 1:
            why_extern[node] = f"nothing to fuse with it, and eager's is faster on strided rows of {length}"
            decisions.append(f"{node.name} ({node.target}): extern, {why_extern[node]}")
            row_of.pop(node, None)
        else:
            kept.append(rg)
    return kept


def join_scalar_groups(rows: list[RowGroup], groups, closed, position, decisions) -> None:
    """Pointwise groups of 0-d values computed from values outside every kernel (a batch norm's
    num_batches_tracked + 1) join the nearest row kernel as side ops, written by each
    row alike, in place of a launch of their own (a few microseconds each: six in the U-Net
    block; measured 0.983-0.995x the time with their own launches, level2/001, 040, level3/005,
    006, 017, bench/session13/ab_next_flags_h100.json). FUSEFORGE_SCALAR_SIDE=0 turns it off."""
    for g in list(groups):
        if any(n.outputs[0].type.shape != () for n in g.nodes):
            continue
        members = set(g.nodes)
        if any(v.producer is not None and v.producer not in members for n in g.nodes for v in n.tensor_inputs()):
            continue   # (reads a computed value: its kernel and this one's order would matter)
        at = position[g.nodes[0]]   # the nearest row kernel after it first, then before it
        for rg in sorted(rows, key=lambda rg: (position[rg.nodes[0]] < at, abs(position[rg.nodes[0]] - at))):
            if any(o in rg.strides for n in g.nodes for o in n.outputs):
                continue   # the kernel reads it (a batch norm with momentum=None): not before it is written
            if closed(set(rg.nodes) | members) and rg.try_add(list(g.nodes), {}, scalar=True):
                rg.nodes.sort(key=position.__getitem__)
                groups.remove(g)
                decisions.append(f"{g.nodes[0].name}…: 0-d pointwise group joins the row kernel of "
                                 f"{rg.nodes[0].name} as a side op")
                break
