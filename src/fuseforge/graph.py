"""The IR: a Graph of Nodes over Values, with static shapes, strides and dtypes.

Values are tensors (or, for graph outputs only, Python literals). A Node is one ATen op
call; ops that return several tensors have several output Values. Node arguments keep the
op's schema order with defaults filled in, so codegen never has to guess a default.
"""
from __future__ import annotations

import math

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class TensorType:
    shape: tuple[int, ...]
    strides: tuple[int, ...]
    dtype: torch.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def extent(self) -> int:
        """One past the largest storage offset an element of this tensor can have."""
        if self.numel == 0:
            return 0
        return 1 + sum((s - 1) * st for s, st in zip(self.shape, self.strides))

    def is_dense(self) -> bool:
        """Non-overlapping and dense: some permutation of the dims is contiguous."""
        return self.extent() == self.numel and all(st >= 0 for st in self.strides)

    def __str__(self) -> str:
        dt = str(self.dtype).replace("torch.", "")
        return f"{dt}[{', '.join(map(str, self.shape))}]"


# Roles of graph inputs.
USER_INPUT, PARAMETER, BUFFER, CONSTANT = "input", "param", "buffer", "const"


@dataclass(eq=False)
class Value:
    name: str
    type: TensorType
    producer: "Node | None" = None
    index: int = 0                 # which result of the producer
    list_index: int | None = None  # for results of type Tensor[]: which element
    role: str = "tmp"              # for graph inputs: input / param / buffer / const
    source: Any = None             # input position, parameter/buffer name, or constant tensor

    def __repr__(self) -> str:
        return f"%{self.name}"


@dataclass(eq=False)
class Node:
    name: str
    op: Any                        # the torch OpOverload
    args: list                     # one entry per schema argument: Value, literal, or list thereof
    outputs: list[Value] = field(default_factory=list)

    @property
    def target(self) -> str:
        return str(self.op)        # e.g. "aten.add.Tensor"

    @property
    def schema(self):
        return self.op._schema

    def arg(self, name: str):
        for a, v in zip(self.schema.arguments, self.args):
            if a.name == name:
                return v
        raise KeyError(f"{self.target} has no argument {name!r}")

    def tensor_inputs(self) -> list[Value]:
        out = []
        for v in self.args:
            if isinstance(v, Value):
                out.append(v)
            elif isinstance(v, (list, tuple)):
                out.extend(x for x in v if isinstance(x, Value))
        return out

    def __repr__(self) -> str:
        return f"{', '.join(map(repr, self.outputs))} = {self.target}({', '.join(map(repr, self.args))})"


@dataclass
class Graph:
    inputs: list[Value]            # placeholders: user inputs, parameters, buffers, constants
    nodes: list[Node]              # in a valid execution order
    outputs: list                  # flat user outputs: Value or literal
    out_spec: Any                  # pytree spec to rebuild the forward's return structure
    mutations: list[tuple[Value, Value]] = field(default_factory=list)  # (new value, input it overwrites)
    input_names: list[str] = field(default_factory=list)  # forward()'s parameter names
    training: bool | None = None   # the mode captured, or None when both modes compute the same

    def user_inputs(self) -> list[Value]:
        return sorted((v for v in self.inputs if v.role == USER_INPUT), key=lambda v: v.source)

    def state(self) -> list[Value]:
        """Parameters and buffers, in the order the generated forward receives them."""
        return [v for v in self.inputs if v.role in (PARAMETER, BUFFER)]

    def users(self) -> dict[Value, list[Node]]:
        users: dict[Value, list[Node]] = {}
        for node in self.nodes:
            for v in node.tensor_inputs():
                users.setdefault(v, [])
                if node not in users[v]:
                    users[v].append(node)
        return users

    def live_out(self) -> set[Value]:
        """Values the outside world needs: user outputs and mutation sources."""
        out = {v for v in self.outputs if isinstance(v, Value)}
        out.update(new for new, _ in self.mutations)
        return out

    def dump(self) -> str:
        lines = [f"input {v.name}: {v.type} ({v.role})" for v in self.inputs]
        lines += [repr(n) for n in self.nodes]
        lines.append(f"return {self.outputs}")
        lines += [f"mutate {old.name} <- {new.name}" for new, old in self.mutations]
        return "\n".join(lines)
