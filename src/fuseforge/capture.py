"""capture: torch.export → functional ATen graph → our Graph with static shapes and strides.

We keep ATen ops at the level eager runs them (`run_decompositions({})` only functionalizes:
conv2d stays conv2d, silu stays silu), so that an op run as an extern executes the very
kernel eager would, and batch-norm buffer updates become explicit mutations.
"""
from __future__ import annotations

import keyword
import operator

import torch
from torch.export.graph_signature import InputKind, OutputKind

from .errors import CaptureError
from .graph import BUFFER, CONSTANT, PARAMETER, USER_INPUT, Graph, Node, TensorType, Value

# Nodes that only assert capture-time facts (dtype/device of a tensor); they compute nothing.
_ASSERTIONS = {
    "aten._assert_tensor_metadata.default",
    "aten._assert_scalar.default",
    "aten.sym_constrain_range_for_size.default",
    "aten._assert_async.msg",
}

# Copies of a constant tensor compute nothing we need to keep.
_CONSTANT_COPIES = {"aten.clone.default", "aten.lift_fresh_copy.default", "aten.detach.default",
                    "aten.alias.default"}

_CPP_RESERVED = {
    "auto", "bool", "break", "case", "catch", "char", "class", "const", "continue", "default",
    "delete", "do", "double", "else", "enum", "explicit", "extern", "false", "float", "for",
    "friend", "goto", "if", "inline", "int", "long", "namespace", "new", "operator", "private",
    "protected", "public", "register", "return", "short", "signed", "sizeof", "static", "struct",
    "switch", "template", "this", "throw", "true", "try", "typedef", "union", "unsigned", "using",
    "virtual", "void", "volatile", "while",
    # names the generated forward and kernel calls use themselves
    "a", "dev", "in", "out", "inputs", "state", "no_grad", "ff", "at", "c10", "std", "m",
}


def _ident(name: str) -> str:
    """A name valid in Python and C++ alike (FX names nearly always are already)."""
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    if not name or name[0].isdigit():
        name = "v_" + name
    if name in _CPP_RESERVED or keyword.iskeyword(name):
        name += "_"
    return name


def _tensor_type(val, what: str) -> TensorType:
    if not isinstance(val, torch.Tensor):
        raise CaptureError(f"{what}: expected a tensor, got {type(val).__name__}")
    try:
        shape = tuple(int(s) for s in val.shape)
        strides = tuple(int(s) for s in val.stride())
    except (TypeError, RuntimeError) as e:  # SymInt without a hint: dynamic shape
        raise CaptureError(f"{what}: shape is not static ({e})") from e
    return TensorType(shape, strides, val.dtype)


def export_program(model: torch.nn.Module, inputs: list):
    """torch.export, with the failure reduced to a one-line cause."""
    try:
        ep = torch.export.export(model, tuple(inputs), strict=False)
        return ep.run_decompositions({})
    except Exception as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CaptureError(f"torch.export could not capture the model: {type(e).__name__}: {first}") from e


def capture(model: torch.nn.Module, inputs: list) -> Graph:
    """The model's graph in its current mode; `graph.training` says whether the mode matters."""
    ep = export_program(model, inputs)
    graph = graph_from_program(ep, model)
    graph.training = model.training if _mode_matters(model, inputs, ep) else None
    return graph


def _mode_matters(model, inputs, ep) -> bool:
    """Whether train() and eval() give different graphs (batch norm, dropout, ...)."""
    was = model.training
    try:
        model.train(not was)
        other = export_program(model, inputs)
    finally:
        model.train(was)
    return other.graph_module.code != ep.graph_module.code


def graph_from_program(ep, model=None) -> Graph:
    sig = ep.graph_signature
    specs = {spec.arg.name: spec for spec in sig.input_specs}
    env: dict[str, object] = {}     # FX node name -> Value / tuple of Values / literal
    inputs: list[Value] = []
    nodes: list[Node] = []
    user_pos = 0
    input_names: list[str] = []

    for fx in ep.graph.nodes:
        if fx.op == "placeholder":
            spec = specs[fx.name]
            val = fx.meta.get("val")
            if spec.kind == InputKind.USER_INPUT:
                if not isinstance(val, torch.Tensor):
                    raise CaptureError(f"input {fx.name!r} is not a tensor ({type(val).__name__}); "
                                       "only tensor inputs are supported")
                v = Value(_ident(fx.name), _tensor_type(val, fx.name), role=USER_INPUT, source=user_pos)
                input_names.append(v.name)
                user_pos += 1
            elif spec.kind == InputKind.PARAMETER:
                v = Value(_ident(fx.name), _tensor_type(val, fx.name), role=PARAMETER, source=spec.target)
            elif spec.kind == InputKind.BUFFER:
                v = Value(_ident(fx.name), _tensor_type(val, fx.name), role=BUFFER, source=spec.target)
            elif spec.kind == InputKind.CONSTANT_TENSOR:
                const = ep.constants[spec.target]
                v = Value(_ident(fx.name), _tensor_type(const, fx.name), role=CONSTANT,
                          source=const.detach().cpu().clone())
            else:
                raise CaptureError(f"unsupported graph input kind {spec.kind.name} for {fx.name!r}")
            env[fx.name] = v
            inputs.append(v)
        elif fx.op == "call_function":
            if fx.target is operator.getitem:
                src, idx = fx.args
                produced = env[src.name]
                if not isinstance(produced, tuple):
                    raise CaptureError(f"getitem on a non-tuple result {src.name!r}")
                env[fx.name] = produced[idx]
                continue
            if not isinstance(fx.target, torch._ops.OpOverload):
                raise CaptureError(f"unsupported operation {fx.target!r} in the captured graph "
                                   "(only ATen ops can be compiled)")
            if str(fx.target) in _ASSERTIONS:
                continue
            if str(fx.target) in _CONSTANT_COPIES and isinstance(fx.args[0], torch.fx.Node) \
                    and getattr(env[fx.args[0].name], "role", None) == CONSTANT:
                env[fx.name] = env[fx.args[0].name]   # torch.tensor(c) in a forward: the constant itself
                continue
            if str(fx.target) == "aten.broadcast_tensors.default" and _broadcasts_nothing(fx):
                env[fx.name] = tuple(env[a.name] for a in fx.args[0])   # a view of each input as it is
                continue
            node = _make_node(fx, env)
            nodes.append(node)
        elif fx.op == "output":
            pass
        else:
            raise CaptureError(f"unsupported FX node kind {fx.op!r}")

    out_node = next(n for n in ep.graph.nodes if n.op == "output")
    results = out_node.args[0]
    outputs, mutations = [], []
    by_target = {v.source: v for v in inputs if v.role in (BUFFER, PARAMETER)}
    user_by_name = {v.name: v for v in inputs if v.role == USER_INPUT}
    for spec, res in zip(sig.output_specs, results):
        value = env[res.name] if isinstance(res, torch.fx.Node) else res
        if spec.kind == OutputKind.USER_OUTPUT:
            outputs.append(value)
        elif spec.kind == OutputKind.BUFFER_MUTATION:
            mutations.append((value, by_target[spec.target]))
        elif spec.kind == OutputKind.USER_INPUT_MUTATION:
            mutations.append((value, user_by_name[_ident(spec.target)]))
        else:
            raise CaptureError(f"unsupported graph output kind {spec.kind.name}")
    for value in outputs:
        if isinstance(value, tuple) or (value is not None and not isinstance(value, (Value, int, float, bool))):
            raise CaptureError(f"unsupported output {value!r}")
    return Graph(inputs=inputs, nodes=nodes, outputs=outputs, out_spec=ep.call_spec.out_spec,
                 mutations=mutations, input_names=input_names)


def _broadcasts_nothing(fx) -> bool:
    """broadcast_tensors of tensors that all have the broadcast shape already: each result is its
    input (same sizes, same strides), so it is not kept as a node."""
    vals = fx.meta.get("val")
    return isinstance(vals, (list, tuple)) and all(
        isinstance(a, torch.fx.Node) and isinstance(v, torch.Tensor) and
        tuple(a.meta["val"].shape) == tuple(v.shape) and a.meta["val"].stride() == v.stride()
        for a, v in zip(fx.args[0], vals))


def _convert(arg, env):
    if isinstance(arg, torch.fx.Node):
        v = env[arg.name]
        if isinstance(v, tuple):
            raise CaptureError(f"a multi-result value {arg.name!r} is used whole")
        return v
    if isinstance(arg, (list, tuple)):
        return [_convert(a, env) for a in arg]
    return arg


def bind_arguments(op, args, kwargs) -> list:
    """Every schema argument in order, taken from args/kwargs or from the schema's default."""
    bound = []
    for i, a in enumerate(op._schema.arguments):
        if i < len(args) and not a.kwarg_only:
            bound.append(args[i])
        elif a.name in kwargs:
            bound.append(kwargs[a.name])
        elif a.has_default_value():
            bound.append(a.default_value)
        else:
            raise CaptureError(f"{op}: argument {a.name!r} missing")
    return bound


def _make_node(fx, env) -> Node:
    op = fx.target
    args = bind_arguments(op, [_convert(a, env) for a in fx.args],
                          {k: _convert(v, env) for k, v in fx.kwargs.items()})
    node = Node(_ident(fx.name), op, args)
    val = fx.meta.get("val")
    returns = op._schema.returns
    if len(returns) == 1 and str(returns[0].type) == "Tensor":
        v = Value(node.name, _tensor_type(val, fx.name), producer=node)
        node.outputs = [v]
        env[fx.name] = v
        return node
    vals = val if isinstance(val, (tuple, list)) else (val,)
    flat = []
    if len(returns) == 1 and str(returns[0].type) in ("Tensor[]", "List[Tensor]"):
        for j, t in enumerate(vals):
            flat.append(Value(f"{node.name}_{j}", _tensor_type(t, fx.name), producer=node, index=0, list_index=j))
    else:
        for i, (r, t) in enumerate(zip(returns, vals)):
            if isinstance(t, torch.Tensor):
                flat.append(Value(f"{node.name}_{i}", _tensor_type(t, fx.name), producer=node, index=i))
            else:
                flat.append(None)
    node.outputs = [v for v in flat if v is not None]
    env[fx.name] = tuple(flat)
    return node
