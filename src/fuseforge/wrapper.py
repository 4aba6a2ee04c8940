"""wrapper: the generated C++ forward, which runs externs and kernels in plan order.

Externs are boxed calls of the very ATen op the captured graph names (every schema argument
passed explicitly), so an extern computes exactly what eager computes. Kernel operands are
checked against the layout their index code assumes and copied only if they differ.
"""
from __future__ import annotations

import os

import torch

from .codegen.cpp import SCALAR_TYPES, ctype, literal
from .codegen.pointwise import KernelSource
from .errors import CaptureError, ConfigError
from .graph import CONSTANT, Value
from .layout import channels_last_strides
from .plan import Extern, Kernel, Plan
from .replay import CAPTURE_SAFE, VIEWS
from .scatter_rows import other_rows, rows_of

_MEMORY_FORMATS = {
    torch.contiguous_format: "at::MemoryFormat::Contiguous",
    torch.channels_last: "at::MemoryFormat::ChannelsLast",
    torch.channels_last_3d: "at::MemoryFormat::ChannelsLast3d",
    torch.preserve_format: "at::MemoryFormat::Preserve",
}


def _ints(xs) -> str:
    return "{" + ", ".join(str(int(x)) for x in xs) + "}"


def _double(x: float) -> str:
    return literal(x, torch.float64)


def ivalue(v, jit_type, where: str) -> str:
    """C++ text for one boxed argument; `jit_type` (the schema's) settles empty lists and floats."""
    typ = str(jit_type)          # e.g. "int", "Optional[float]", "List[Optional[Tensor]]"
    if v is None:
        return "c10::IValue()"
    if isinstance(v, Value):
        return v.name
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)) and typ.removeprefix("Optional[").startswith("float"):
        return _double(float(v))
    if isinstance(v, int):
        return f"int64_t({v})"
    if isinstance(v, float):
        return _double(v)
    if isinstance(v, str):
        return f'std::string("{v}")'
    if isinstance(v, torch.dtype):
        return f"c10::IValue({SCALAR_TYPES[v]})"
    if isinstance(v, torch.device):
        return "dev"       # captured on one device, run on the inputs' device
    if isinstance(v, torch.layout) and v == torch.strided:
        return "c10::IValue(at::kStrided)"
    if isinstance(v, torch.memory_format):
        return f"c10::IValue({_MEMORY_FORMATS[v]})"
    if isinstance(v, (list, tuple)):
        if "Optional[Tensor]" in typ:
            return "c10::List<std::optional<at::Tensor>>({" + ", ".join(
                f"std::optional<at::Tensor>({x.name})" if x is not None else "std::nullopt" for x in v) + "})"
        if "Tensor" in typ:
            return "c10::List<at::Tensor>({" + ", ".join(x.name for x in v) + "})"
        if "float" in typ:
            return "std::vector<double>{" + ", ".join(_double(float(x)) for x in v) + "}"
        if "bool" in typ:
            return "c10::List<bool>({" + ", ".join("true" if x else "false" for x in v) + "})"
        if "int" in typ:
            return f"std::vector<int64_t>{_ints(v)}"
    raise CaptureError(f"{where}: cannot pass an argument of type {typ} ({v!r}) to ATen yet")


# A view in the captured graph only names a shape. The strides an extern returns on the GPU can
# differ from the traced ones (SDPA's backends lay out their output differently), and a view of
# such a tensor fails where a reshape copies; the graph is functional, so the values are equal.
RUN_AS = {"aten::view": "aten::reshape", "aten::_unsafe_view": "aten::reshape"}


def _handle(node) -> str:
    return "op_" + str(node.op).replace(".", "_")


def bound_call() -> bool:
    """On unless FUSEFORGE_BOUND_CALL=0: the module calls the extension's `call`, its inputs as
    arguments and its state bound once in an ff::State (made when the module is built or moved),
    a lone output returned as a tensor; =0 passes two lists each call and gets a list back. On a
    CPU, pybind alone (bench/session26/host/pybind_calls.*): the two lists took 1.1-1.2 µs a call
    against 0.3-0.6 with three state tensors, 1.9-2.1 against 0.55-0.6 with thirty; a list
    returned 0.16-0.18 µs more than a tensor. One H200, 6 problems (bench/session26/bound): GPU
    time 0.995-1.004x, host time a call 0.3-2.5 µs less."""
    flag = os.environ.get("FUSEFORGE_BOUND_CALL", "")
    if flag not in ("", "0", "1"):
        raise ConfigError(f"FUSEFORGE_BOUND_CALL={flag!r}: expected 0 or 1")
    return flag != "0"


def lone_output(plan: Plan) -> bool:
    """The forward returns one tensor, not a structure (bound_call returns it as a tensor)."""
    g = plan.graph
    return len(g.outputs) == 1 and isinstance(g.outputs[0], Value) and g.out_spec.is_leaf()


def _render_bound_call(plan: Plan, emit) -> list[str]:
    """ff::State and `call` (bound_call): the forward with its inputs as arguments and its state
    converted once; returns the lines that bind them into the module."""
    n = len(plan.graph.input_names)
    params = ", ".join(f"const at::Tensor& in{i}" for i in range(n))
    args = ", ".join(f"in{i}" for i in range(n))
    lone = lone_output(plan)
    emit("")
    emit("// The state tensors converted from Python once (when the module is built or moved), not on every call.")
    emit("namespace ff {")
    emit("struct State {")
    emit("  std::vector<at::Tensor> tensors;")
    emit("};")
    emit("}  // namespace ff")
    emit("")
    emit("// The forward as the module calls it: its inputs as arguments, its state bound once.")
    emit(f"{'at::Tensor' if lone else 'std::vector<at::Tensor>'} call({params + ', ' if params else ''}"
         "const ff::State& state) {")
    emit(f"  return forward({{{args}}}, state.tensors){'[0]' if lone else ''};")
    emit("}")
    return ['  pybind11::class_<ff::State>(m, "State", pybind11::module_local())   // (each extension its own)',
            "      .def(pybind11::init([](std::vector<at::Tensor> t) { return ff::State{std::move(t)}; }));",
            '  m.def("call", &call, "the forward, its inputs as arguments and its state bound once");']


def render_forward(plan: Plan, sources: dict[Kernel, KernelSource]) -> str:
    g = plan.graph
    lines: list[str] = []
    emit = lines.append
    handles = {}
    for step in plan.externs:
        if step.cat_buffer:   # (no ATen call)
            continue
        s = step.node.schema
        handles.setdefault(_handle(step.node), (RUN_AS[s.name], "") if s.name in RUN_AS else
                           (s.name, s.overload_name))

    together = _state_updates_together(g.mutations)
    if together:
        handles["op_foreach_copy"] = ("aten::_foreach_copy_", "")
    user_inputs = g.user_inputs()
    state = g.state() + plan.constants()
    emit("std::vector<at::Tensor> forward_ops(const std::vector<at::Tensor>& inputs,")
    emit("                                   const std::vector<at::Tensor>& state) {")
    emit(f"  TORCH_CHECK(inputs.size() == {len(user_inputs)} && state.size() == {len(state)},")
    emit(f'              "fuseforge: forward expects {len(user_inputs)} input(s) and {len(state)} state tensor(s)");')
    emit("  at::NoGradGuard no_grad;")
    for k, v in enumerate(user_inputs):
        emit(f"  const at::Tensor& {v.name} = inputs[{k}];")
    for k, v in enumerate(state):
        emit(f"  const at::Tensor& {v.name} = state[{k}];  // {v.source if v.role != CONSTANT else 'constant'}")
    for v in user_inputs:
        emit(f'  ff::check_input({v.name}, "{v.name}", {_ints(v.type.shape)}, {SCALAR_TYPES[v.type.dtype]});')
    anchor = user_inputs[0].name if user_inputs else (state[0].name if state else None)
    emit(f"  const c10::Device dev = {anchor + '.device()' if anchor else 'c10::Device(c10::kCPU)'};")

    converted: dict = {}
    copied: set = set()
    placed: dict = {}   # {kernel output: its place in a buffer, and a comment}: its slice of a channels-last
    # cat's buffer (layout.py), its rows of a slice_scatter's (scatter_rows.py)
    for step in plan.externs:   # cat_buffers.py: the last cat of a family, allocated first
        if step.into_slice:   # (its piece is in the buffer as soon as it is computed)
            copied.add((_buffer(step.into_slice[0]), step.into_slice[1]))
        if step.cat_buffer == step.node.name:
            t = step.node.outputs[0].type
            emit(f"  const at::Tensor {_buffer(step.node.name)} = ff::empty({_ints(t.shape)}, {_ints(t.strides)}, "
                 f"{SCALAR_TYPES[t.dtype]}, dev);  // its earlier cats are views of it")
        if step.cat_placed:
            t = step.node.outputs[0].type
            emit(f"  const at::Tensor {step.node.name}_buffer = ff::empty({_ints(t.shape)}, "
                 f"{_ints(channels_last_strides(t.shape))}, {SCALAR_TYPES[t.dtype]}, dev);  // channels-last, "
                 f"{', '.join(step.cat_placed)} written into it in place")
            off = 0
            for x in step.node.arg("tensors"):
                if x.name in step.cat_placed:
                    placed[x.name] = f"{step.node.name}_buffer.narrow(1, {off}, {x.type.shape[1]})", "its slice of the cat"
                off += x.type.shape[1]
        if step.scatter_src:   # (scatter_rows.py: its src's kernel writes into the buffer's rows)
            t, (dim, start, end, stride) = step.node.outputs[0].type, rows_of(step.node)
            emit(f"  const at::Tensor {_buffer(step.node.name)} = ff::empty({_ints(t.shape)}, {_ints(t.strides)}, "
                 f"{SCALAR_TYPES[t.dtype]}, dev);  // {step.scatter_src} written into rows {start}::{stride} of it")
            placed[step.scatter_src] = f"{_buffer(step.node.name)}.slice({dim}, {start}, {end}, {stride})", "its rows of it"
    once = made_once(plan)
    for step in plan.steps:
        emit("")
        if step in once:   # (its output computed from one state tensor alone)
            _render_made_once(step, once[step], emit,
                              lambda out: (_render_extern(step, out, converted) if isinstance(step, Extern) else
                                           _render_kernel_call(sources[step], out, placed)))
        elif isinstance(step, Extern) and step.cat_buffer:
            _render_cat_view(step, emit, copied)
        elif isinstance(step, Extern) and step.scatter_src:
            _render_scatter(step, emit)
        elif isinstance(step, Extern):
            _render_extern(step, emit, converted)
        else:
            _render_kernel_call(sources[step], emit, placed)

    if g.mutations:
        emit("")
        emit("  // state updates the model makes in place (batch-norm running statistics, ...)")
    for new, old in g.mutations:
        if old.type.dtype not in together:
            emit(f"  {old.name}.copy_({new.name});")
    for pairs in together.values():
        news, olds = (", ".join(v.name for v in vs) for vs in zip(*pairs))
        emit(f"  ff::call(op_foreach_copy, {{c10::List<at::Tensor>({{{olds}}}), c10::List<at::Tensor>({{{news}}}), false}});")
    outs = [v.name for v in g.outputs if isinstance(v, Value)]
    emit(f"  return {{{', '.join(outs)}}};")
    emit("}")
    emit("")
    replayed = plan.why_op_by_op is None
    if replayed:
        emit("// The forward: replayed as a CUDA graph on a GPU (ff::replayed), op by op on the CPU.")
        emit("ff::Replay replay;")
    else:
        emit(f"// The forward: op by op, {plan.why_op_by_op}.")
    emit("std::vector<at::Tensor> forward(const std::vector<at::Tensor>& inputs, const std::vector<at::Tensor>& state) {")
    updated = sorted(state.index(old) for _, old in g.mutations)
    if replayed and updated:
        emit(f"  static const std::vector<size_t> updated{{{', '.join(map(str, updated))}}};  // the state it updates")
    emit(f"  return ff::replayed(replay, inputs, state, forward_ops{', updated' if updated else ''});"
         if replayed else "  return forward_ops(inputs, state);")
    emit("}")
    bind = _render_bound_call(plan, emit) if bound_call() else []

    head = ["namespace {"]
    for h, (name, overload) in handles.items():
        head.append(f'const c10::OperatorHandle {h} = ff::op("{name}", "{overload}");')
    head.append("}  // namespace")
    binding = ["", "PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {",
               '  m.def("forward", &forward, "the generated forward");', *bind,
               '  m.def("set_poison", [](bool on) { ff::poison = on; }, "fill fresh kernel outputs with NaN");',
               '  m.def("replays", []() { return std::vector<int64_t>{%s}; }, "CUDA graphs captured, replays");'
               % ("replay.captures, replay.replays" if replayed else "0, 0"),
               '  m.def("set_replay", [](bool on) { %s }, "replay the forward as a CUDA graph (on) or run it op by op");'
               % ("ff::set_replay(replay, on);" if replayed else "(void)on;"),
               "}"]
    return "\n".join(head + [""] + lines + binding) + "\n"


def _state_updates_together(mutations) -> dict:
    """The state updates of one dtype (a batch norm's running mean and variance, its
    num_batches_tracked) copied by one aten::_foreach_copy_ (one launch on the GPU) instead of one
    copy_ each: {dtype: [(new, old)]} for the dtypes with two or more (0.95-0.997 of the batch-norm
    networks' times, bench/session14/ab_foreach_h100.json). FUSEFORGE_FOREACH_STATE=0: a copy_ each."""
    if os.environ.get("FUSEFORGE_FOREACH_STATE") == "0":
        return {}
    by_dtype: dict = {}
    for new, old in mutations:
        by_dtype.setdefault(old.type.dtype, []).append((new, old))
    return {d: pairs for d, pairs in by_dtype.items() if len(pairs) > 1}


def _render_extern(step: Extern, emit, converted: dict) -> None:
    """`converted`: the channels-last copies of convolution inputs made so far ({(value, format):
    its name}): convolutions reading the same input share one conversion."""
    node = step.node
    where = f"{node.name} ({node.target})"
    args = [ivalue(v, a.type, where) for a, v in zip(node.schema.arguments, node.args)]
    shown = ", ".join(repr(v) if not isinstance(v, Value) else v.name for v in node.args)
    as_ = f" as {RUN_AS[node.schema.name]}" if node.schema.name in RUN_AS else ""
    emit(f"  // {node.name}: extern {node.target}({shown}){as_}")
    if step.channels_last:   # cuDNN then writes a channels-last output too (layout.py)
        fmt = "at::MemoryFormat::ChannelsLast" + ("3d" if node.outputs[0].type.ndim == 5 else "")
        for k, a in enumerate(node.schema.arguments):
            if a.name == "input":
                if (args[k], fmt) not in converted:
                    converted[args[k], fmt] = f"{node.name}_input"
                    emit(f"  const at::Tensor {node.name}_input = ff::to_channels_last({args[k]}, {fmt});")
                args[k] = converted[args[k], fmt]
                continue
            elif a.name == "weight":
                emit(f"  static ff::FormatCache {node.name}_weight_cache;  // converted on the first call")
                emit(f"  const at::Tensor {node.name}_weight = ff::converted_once({args[k]}, {fmt}, "
                     f"{node.name}_weight_cache);")
            else:
                continue
            args[k] = f"{node.name}_{a.name}"
    if step.cat_channels_last:   # the channels-last convolutions reading it need no conversion (layout.py)
        pieces = ", ".join(x.name for x in node.arg("tensors"))
        if step.cat_placed:
            flags = ", ".join("true" if x.name in step.cat_placed else "false" for x in node.arg("tensors"))
            emit(f"  const at::Tensor {node.outputs[0].name} = ff::cat_channels_last({{{pieces}}}, "
                 f"{node.name}_buffer, {{{flags}}});  // (true: in place already)")
        else:
            emit(f"  const at::Tensor {node.outputs[0].name} = ff::cat_channels_last({{{pieces}}});")
        return
    call = f"ff::call({_handle(node)}, {{{', '.join(args)}}})"
    if len(node.outputs) == 1 and node.outputs[0].list_index is None and len(node.schema.returns) == 1:
        out = f"{call}[0].toTensor()"
        if step.to_nchw and step.into_slice:   # only cats of a buffer read it (cat_buffers.py)
            cat, off = step.into_slice
            out = f"ff::to_nchw({out}, {_buffer(cat)}.narrow(1, {off}, {node.outputs[0].type.shape[1]}))"
        elif step.to_nchw:   # its readers want NCHW (layout.py)
            out = f"ff::to_nchw({out})"
        emit(f"  const at::Tensor {node.outputs[0].name} = {out};")
        return
    assert not step.to_nchw, where
    emit(f"  const std::vector<c10::IValue> {node.name}_r = {call};")
    for v in node.outputs:
        if v.list_index is None:
            emit(f"  const at::Tensor {v.name} = {node.name}_r[{v.index}].toTensor();")
        else:
            emit(f"  const at::Tensor {v.name} = {node.name}_r[{v.index}].toTensorVector()[{v.list_index}];")


def _buffer(cat: str) -> str:
    """The name of the buffer the cats of a family share (cat_buffers.py): their last one's."""
    return f"{cat}_buffer"


def _render_cat_view(step: Extern, emit, copied: set) -> None:
    """A cat of a shared buffer (cat_buffers.py): the pieces not yet in it copied into their
    slices, then the cat is the buffer's first channels. `copied`: (buffer, channel offset) done."""
    node, buf = step.node, _buffer(step.cat_buffer)
    emit(f"  // {node.name}: aten.cat of {', '.join(x.name for x in node.arg('tensors'))} in {buf}")
    off = 0
    for x in node.arg("tensors"):
        if (buf, off) not in copied:
            emit(f"  ff::copy_into({buf}.narrow(1, {off}, {x.type.shape[1]}), {x.name});")
            copied.add((buf, off))
        off += x.type.shape[1]
    view = buf if step.cat_buffer == node.name else f"{buf}.narrow(1, 0, {off})"
    emit(f"  const at::Tensor {node.outputs[0].name} = {view};")


def made_once(plan: Plan) -> dict:
    """{step: the state tensor its one output is computed from alone}: a pointwise kernel or an
    extern that is not a view (a transposed convolution's weights flipped and made contiguous:
    ops/convs._flipped), of one parameter, buffer or constant the forward does not update, its
    output not a result of the model. Made on the first call and again when that tensor changes
    (ff::made_once, as the converted and packed weights), not on every call: the convolutions
    after it then find the same weights each call and convert or pack them once too.
    FUSEFORGE_MADE_ONCE=0 turns it off."""
    if os.environ.get("FUSEFORGE_MADE_ONCE", "1") == "0":
        return {}
    g = plan.graph
    updated = {id(old) for _, old in g.mutations}
    roots = {id(v): {v.name} for v in g.state() + plan.constants() if id(v) not in updated}
    for node in g.nodes:   # (graph order: a value's roots before its readers')
        ins = node.tensor_inputs()
        if ins and all(id(v) in roots for v in ins):
            for v in node.outputs:
                roots[id(v)] = set().union(*(roots[id(u)] for u in ins))
    live = {id(v) for v in g.live_out()}
    placed = {x for e in plan.externs for x in (*e.cat_placed, e.scatter_src) if x}   # (written into a buffer)
    out = {}
    for step in plan.steps:
        outs = step.node.outputs if isinstance(step, Extern) else step.outputs
        if isinstance(step, Extern):   # (not one whose conversions later steps share: _render_extern)
            name = step.node.target.split(".")[1]
            pure = name in CAPTURE_SAFE and name not in VIEWS and not (
                step.cat_buffer or step.scatter_src or step.channels_last or step.cat_channels_last)
        else:
            pure = type(step) is Kernel and not any(v.name in placed for v in outs)
        if pure and len(outs) == 1 and id(outs[0]) not in live and len(roots.get(id(outs[0]), ())) == 1:
            out[step] = next(iter(roots[id(outs[0])]))
    return out


def _render_made_once(step, root: str, emit, render) -> None:
    """The step rendered inside ff::made_once over `root` (its output declared again in the lambda,
    which returns it)."""
    lines: list[str] = []
    render(lines.append)
    v = (step.node.outputs if isinstance(step, Extern) else step.outputs)[0].name
    emit(f"  // {v}: from {root} alone, made once (again when {root} changes: ff::made_once)")
    emit(f"  static ff::FormatCache {v}_once;")
    emit(f"  const at::Tensor {v} = ff::made_once({root}, {v}_once, [&] {{")
    for line in lines:
        emit("  " + line)
    emit(f"    return {v};")
    emit("  });")


def _render_scatter(step: Extern, emit) -> None:
    """A slice_scatter whose src is in its buffer already (scatter_rows.py): the other rows copied
    from its input."""
    node, buf = step.node, _buffer(step.node.name)
    dim, start, end, stride = rows_of(node)
    base = node.arg("self").name
    emit(f"  // {node.name}: aten.slice_scatter of {step.scatter_src} into rows {start}::{stride} of {base} "
         f"(written in place by its kernel), the other rows copied")
    for a, b, s in other_rows(node.outputs[0].type.shape[dim], start, end, stride):
        emit(f"  {buf}.slice({dim}, {a}, {b}, {s}).copy_({base}.slice({dim}, {a}, {b}, {s}));")
    emit(f"  const at::Tensor {node.outputs[0].name} = {buf};")


def _render_kernel_call(src: KernelSource, emit, placed: dict) -> None:
    k = src.kernel
    emit(f"  // {k.name}: {k.summary()}")
    for op in src.outputs:
        t = op.value.type
        if op.value.name in placed:
            emit(f"  const at::Tensor {op.value.name} = {placed[op.value.name][0]};  // {placed[op.value.name][1]}")
            continue
        emit(f"  const at::Tensor {op.value.name} = ff::empty({_ints(t.shape)}, {_ints(op.strides)}, "
             f"{SCALAR_TYPES[t.dtype]}, dev);")
    emit("  {")
    ptrs = []
    for op in src.inputs:
        t = op.value.type
        operand = (f"ff::operand({op.value.name}, {_ints(t.shape)}, {_ints(op.strides)}, "
                   f'{SCALAR_TYPES[t.dtype]}, dev, "{op.value.name}")')
        emit(f"    const at::Tensor {op.var} = {f'ff::aligned16({operand})' if op.align16 else operand};")
        ptrs.append(f"{op.var}.data_ptr<{ctype(t.dtype)}>()")
    ptrs += [f"{op.value.name}.data_ptr<{ctype(op.value.type.dtype)}>()" for op in src.outputs]
    if src.workspace:   # partial results of rows split over several blocks, a GEMM's packed operands
        size = f"{k.name}_ws_bytes" if src.workspace_on_cpu else f"dev.is_cuda() ? {k.name}_ws_bytes : 0"
        emit(f"    const at::Tensor ws = ff::empty({{static_cast<int64_t>({size})}}, {{1}}, at::kByte, dev);")
        ptrs.append("ws.data_ptr<uint8_t>()")
    if src.packed:   # a generated convolution's weights, packed on the first call and when they change
        emit(f"    static ff::FormatCache {k.name}_weights;")
        emit(f"    const at::Tensor packed = ff::packed_once({src.packed}, {k.name}_packed_bytes, {k.name}_weights, "
             f'FF_CUDA_FN({k.name}_pack), "{k.name}");')
        ptrs.append("packed.defined() ? packed.data_ptr<float>() : nullptr")
    emit(f"    const {k.name}_args a{{{', '.join(ptrs)}}};")
    emit(f'    ff::run(dev, {k.name}_n, "{k.name}", [&](int64_t i) {{ {k.name}_elem(a, i); }}, '
         f"FF_CUDA({k.name}_cuda));")
    emit("  }")
