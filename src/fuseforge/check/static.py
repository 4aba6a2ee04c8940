"""Static checks of a candidate ModelNew file, on its Python syntax tree (never imported here).

Rules (the id is what reports and tests use):

  syntax-error          the file does not parse
  no-modelnew           no class ModelNew
  no-custom-kernel      nothing builds or defines a kernel (load_inline/load, triton.jit)
  forward-no-kernel     ModelNew.forward (and what it calls in the file) never calls a kernel
  reference-call        forward reaches the reference: inherits Model.forward, calls
                        super().forward of Model, Model.forward(...), or an attribute made by Model(...)
  try-except            a try statement anywhere (a fallback can hide a failing kernel)
  pass-statement        `pass` anywhere (KernelBench's strict checker rejects it)
  torch-compute         a PyTorch compute call on the forward path: torch.* / F.* functions,
                        nn modules (nn.Conv2d, ...) called from forward, tensor methods such as
                        .matmul()/.softmax(), the @ operator
  monkeypatch           assignment, setattr or del on an attribute of an imported module or
                        class (torch.cuda.synchronize = ..., time.perf_counter = ...), writes to
                        builtins or sys.modules
  global-setting        a write to a global torch setting (torch.backends.*, set_* functions)
  introspection         reaching into the caller: gc.get_objects/get_referrers, sys._getframe,
                        inspect.stack/currentframe, ctypes, sys.settrace/setprofile
  streams-threads       side streams or concurrency: torch.cuda.Stream/stream/set_stream,
                        threading, concurrent.futures, multiprocessing, asyncio, os.fork;
                        cudaStreamCreate / std::thread / std::async in the C++/CUDA sources
  precision             lower precision than float32: .half()/.bfloat16(), torch.float16/
                        bfloat16, allow_tf32 / set_float32_matmul_precision, __half/bfloat16 in
                        the C++/CUDA sources
  aten-in-extension     the C++ sources call ATen/torch compute (at::matmul, "aten::conv2d", ...):
                        library work inside the extension (fuseforge's externs do this by design)

Levels decide the severity of each rule; an "error" finding fails the check, a "warning" is
reported only, "info" is listed in JSON only:

  rule                lenient  default  strict
  syntax-error        error    error    error
  no-modelnew         error    error    error
  reference-call      error    error    error
  monkeypatch         error    error    error
  no-custom-kernel    warning  error    error
  forward-no-kernel   warning  error    error
  try-except          warning  error    error
  introspection       warning  error    error
  streams-threads     warning  error    error
  pass-statement      warning  warning  error
  torch-compute       warning  warning  error
  precision           warning  warning  error
  global-setting      warning  warning  error
  aten-in-extension   info     info     warning

"off" runs no static checks. "strict" is KernelBench's strict spirit (no try/except, no pass,
no PyTorch compute on the forward path, real kernels); "default" tolerates a kept library call
(a cuDNN convolution before a fused epilogue) and `pass`, with warnings.

The C++/CUDA sources are Python string constants; they have no syntax tree here, so the few
source-level rules (streams-threads, precision, aten-in-extension) match tokens in them.
"""
from __future__ import annotations

import ast
import re
from dataclasses import asdict, dataclass, field

LEVELS = ("off", "lenient", "default", "strict")

_E, _W, _I = "error", "warning", "info"
SEVERITY = {
    "syntax-error": (_E, _E, _E),
    "no-modelnew": (_E, _E, _E),
    "reference-call": (_E, _E, _E),
    "monkeypatch": (_E, _E, _E),
    "no-custom-kernel": (_W, _E, _E),
    "forward-no-kernel": (_W, _E, _E),
    "try-except": (_W, _E, _E),
    "introspection": (_W, _E, _E),
    "streams-threads": (_W, _E, _E),
    "pass-statement": (_W, _W, _E),
    "torch-compute": (_W, _W, _E),
    "precision": (_W, _W, _E),
    "global-setting": (_W, _W, _E),
    "aten-in-extension": (_I, _I, _W),
}

# torch.<name> calls that allocate, describe or move data without computing a result from it
TORCH_NONCOMPUTE = {
    "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like", "full",
    "full_like", "tensor", "as_tensor", "as_strided", "from_numpy", "arange", "linspace", "eye",
    "device", "dtype", "Size", "Generator", "is_tensor", "is_floating_point", "is_complex",
    "numel", "no_grad", "enable_grad", "inference_mode", "set_grad_enabled", "is_grad_enabled",
    "manual_seed", "seed", "get_default_dtype", "promote_types", "result_type", "can_cast",
    "finfo", "iinfo", "broadcast_shapes", "get_device", "is_inference_mode_enabled",
}
TORCH_NONCOMPUTE_PREFIXES = ("torch.cuda.", "torch.utils.", "torch.backends.", "torch.jit.",
                             "torch.library.", "torch.autograd.", "torch.compiler.", "torch._C.",
                             "torch.version", "torch.testing.")
# tensor methods that compute (anything else on an unknown receiver is not counted)
COMPUTE_METHODS = {
    "matmul", "mm", "bmm", "addmm", "addmv", "baddbmm", "addbmm", "mv", "dot", "outer", "einsum",
    "conv1d", "conv2d", "conv3d", "relu", "relu_", "gelu", "silu", "sigmoid", "sigmoid_", "tanh",
    "tanh_", "softmax", "log_softmax", "logsumexp", "sum", "mean", "var", "std", "prod", "norm",
    "exp", "exp_", "log", "log_", "sqrt", "rsqrt", "pow", "clamp", "clamp_", "clamp_min",
    "clamp_max", "abs", "neg", "add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_",
    "maximum", "minimum", "amax", "amin", "argmax", "argmin", "cumsum", "cumprod", "erf", "sin",
    "cos", "masked_fill", "where", "lerp", "addcmul", "addcdiv", "hardtanh", "softplus", "mish",
    "leaky_relu", "elu", "selu", "max", "min", "topk", "sort", "kthvalue", "median",
}
NN_CONTAINERS = {"Module", "ModuleList", "ModuleDict", "Parameter", "ParameterList",
                 "ParameterDict", "Identity", "Buffer"}
EXT_FACTORIES = {"torch.utils.cpp_extension.load_inline", "torch.utils.cpp_extension.load",
                 "load_inline"}
INTROSPECTION = {"gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._getframe",
                 "inspect.currentframe", "inspect.stack", "inspect.getouterframes",
                 "inspect.getframeinfo", "sys.settrace", "sys.setprofile", "threading.settrace",
                 "threading.setprofile", "sys._current_frames"}
CONCURRENCY_PREFIXES = ("threading.", "concurrent.futures", "multiprocessing", "asyncio.",
                        "_thread.", "torch.multiprocessing")
STREAM_CALLS = {"torch.cuda.Stream", "torch.cuda.stream", "torch.cuda.set_stream",
                "torch.cuda.ExternalStream", "os.fork", "torch.Stream"}
PRECISION_ATTRS = {"torch.float16", "torch.half", "torch.bfloat16", "torch.float8_e4m3fn",
                   "torch.float8_e5m2"}
PRECISION_METHODS = {"half", "bfloat16"}
PRECISION_SETTINGS = ("allow_tf32", "set_float32_matmul_precision",
                      "allow_fp16_reduced_precision_reduction", "allow_bf16_reduced_precision_reduction")
CPP_STREAMS = re.compile(r"\b(cudaStreamCreate\w*|std::thread|std::async|pthread_create)\b")
CPP_PRECISION = re.compile(r"\b(__half2?|__nv_bfloat16|nv_bfloat162?|__float2half\w*|__float2bfloat16\w*|"
                           r"at::kHalf|at::kBFloat16|torch::kHalf|torch::kBFloat16)\b")
CPP_ATEN = re.compile(r"\b(?:at|torch)::([a-z][a-z0-9_]*)\s*\(|\"aten::([a-z][a-z0-9_]*)")
CPP_NONCOMPUTE = {"parallel_for", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones",
                  "ones_like", "full", "full_like", "from_blob", "get_num_threads", "set_num_threads",
                  "in_parallel_region", "get_thread_num", "device", "scalar_tensor", "tensor"}


@dataclass
class Finding:
    rule: str
    severity: str
    line: int
    message: str


@dataclass
class StaticReport:
    level: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def passed(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"level": self.level, "passed": self.passed,
                "findings": [asdict(f) for f in self.findings]}


def static_check(source: str, level: str = "default", filename: str = "<candidate>") -> StaticReport:
    if level not in LEVELS:
        raise ValueError(f"static level must be one of {', '.join(LEVELS)}, not {level!r}")
    report = StaticReport(level)
    if level == "off":
        return report
    column = LEVELS.index(level) - 1

    def add(rule, line, message):
        report.findings.append(Finding(rule, SEVERITY[rule][column], int(line or 0), message))

    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as e:
        add("syntax-error", e.lineno, f"the file does not parse: {e.msg}")
        return report
    _Analyzer(tree, add).run()
    seen, unique = set(), []
    for f in sorted(report.findings, key=lambda f: (f.line, f.rule, f.message)):
        if (f.rule, f.line, f.message) not in seen:
            seen.add((f.rule, f.line, f.message))
            unique.append(f)
    report.findings = unique
    return report


class _Analyzer:
    def __init__(self, tree: ast.Module, add):
        self.tree = tree
        self.add = add
        self.aliases: dict[str, str] = {}        # local name → dotted origin ("F" → "torch.nn.functional")
        self.functions: dict[str, ast.FunctionDef] = {}
        self.classes: dict[str, ast.ClassDef] = {}
        self.ext_names: set[str] = set()         # module-level names bound to built extensions
        self.triton_kernels: set[str] = set()
        self.kernel_defined = False

    # ---------------------------------------------------------------- names
    def dotted(self, node) -> str | None:
        if isinstance(node, ast.Name):
            return self.aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = self.dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    def imported_roots(self) -> set[str]:
        return {v.split(".")[0] for v in self.aliases.values()} | {"builtins"}

    def _collect(self):
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.asname:
                        self.aliases[a.asname] = a.name
                    else:
                        self.aliases.setdefault(a.name.split(".")[0], a.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    self.aliases[a.asname or a.name] = f"{node.module}.{a.name}"
        for node in self.tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self.functions[node.name] = node
            elif isinstance(node, ast.ClassDef):
                self.classes[node.name] = node
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for d in node.decorator_list:
                    target = d.func if isinstance(d, ast.Call) else d
                    name = self.dotted(target) or ""
                    if name.startswith("triton") and name.endswith("jit"):
                        self.triton_kernels.add(node.name)
                        self.kernel_defined = True
        # extension handles: X = load_inline(...), X = f() where f returns one, X = Y
        changed = True
        while changed:
            changed = False
            for node in ast.walk(self.tree):
                if isinstance(node, ast.Assign) and self.is_ext_expr(node.value):
                    for t in node.targets:
                        if isinstance(t, ast.Name) and t.id not in self.ext_names:
                            self.ext_names.add(t.id)
                            changed = True

    def is_ext_factory(self, call: ast.Call) -> bool:
        name = self.dotted(call.func) or ""
        if name in EXT_FACTORIES or name.endswith("cpp_extension.load_inline") or \
                name.endswith("cpp_extension.load"):
            return True
        fn = self.functions.get(name)
        if fn is not None:
            return any(isinstance(r, ast.Return) and r.value is not None and self.is_ext_expr(r.value)
                       for r in ast.walk(fn))
        return False

    def is_ext_expr(self, expr) -> bool:
        if isinstance(expr, ast.Call):
            return self.is_ext_factory(expr)
        if isinstance(expr, ast.Name):
            return expr.id in self.ext_names
        return False

    # ---------------------------------------------------------------- classes
    def mro(self, cls_name: str) -> list[ast.ClassDef]:
        out, todo = [], [cls_name]
        while todo:
            name = todo.pop(0)
            cls = self.classes.get(name)
            if cls is None or cls in out:
                continue
            out.append(cls)
            todo[:0] = [b.id for b in cls.bases if isinstance(b, ast.Name)]
        return out

    def base_names(self, cls_name: str) -> set[str]:
        names = set()
        for cls in self.mro(cls_name):
            for b in cls.bases:
                d = self.dotted(b)
                if d:
                    names.add(d)
        return names

    def find_method(self, cls_name: str, method: str, after: ast.ClassDef | None = None):
        chain = self.mro(cls_name)
        if after is not None and after in chain:
            chain = chain[chain.index(after) + 1:]
        for cls in chain:
            for item in cls.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)) and item.name == method:
                    return cls, item
        return None, None

    def self_attributes(self, cls_name: str) -> dict[str, ast.expr]:
        """self.<name> = <expr> anywhere in the class and its in-file bases."""
        attrs = {}
        for cls in reversed(self.mro(cls_name)):
            for node in ast.walk(cls):
                if isinstance(node, ast.Assign):
                    for t in node.targets:
                        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self":
                            attrs[t.attr] = node.value
            for item in cls.body:  # class-level attributes
                if isinstance(item, ast.Assign):
                    for t in item.targets:
                        if isinstance(t, ast.Name):
                            attrs.setdefault(t.id, item.value)
        return attrs

    def attr_kind(self, expr) -> tuple[str, str]:
        """What a self attribute holds: ('ext', name) | ('nn', cls) | ('class', name) | ('ref', '') | ('', '')."""
        if self.is_ext_expr(expr):
            return "ext", getattr(expr, "id", "extension")
        if isinstance(expr, ast.Call):
            name = self.dotted(expr.func) or ""
            if name == "Model" or name.endswith(".Model"):
                return "ref", name
            if name in self.classes:
                return "class", name
            if name.startswith("torch.nn.") and name.split(".")[-1][:1].isupper():
                return "nn", name.split(".")[-1]
        return "", ""

    # ---------------------------------------------------------------- run
    def run(self):
        self._collect()
        self.file_rules()
        if "ModelNew" not in self.classes:
            self.add("no-modelnew", 0, "the file defines no class ModelNew")
            return
        if not self.kernel_defined and not self.ext_names and not any(
                isinstance(n, ast.Call) and self.is_ext_factory(n) for n in ast.walk(self.tree)):
            self.add("no-custom-kernel", self.classes["ModelNew"].lineno,
                     "no custom kernel: nothing calls load_inline/load or defines a triton.jit kernel")
        self.forward_rules()

    def file_rules(self):
        for node in ast.walk(self.tree):
            line = getattr(node, "lineno", 0)
            if isinstance(node, ast.Try) or type(node).__name__ == "TryStar":
                self.add("try-except", line, "try statement: an except/finally fallback can hide a "
                                             "failing kernel behind PyTorch code")
            elif isinstance(node, ast.Pass):
                self.add("pass-statement", line, "`pass` statement")
            elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
                for t in targets:
                    self.check_store(t, line, deleting=isinstance(node, ast.Delete))
            elif isinstance(node, ast.Call):
                self.check_call_anywhere(node, line)
            elif isinstance(node, ast.Attribute):
                name = self.dotted(node) or ""
                if name in PRECISION_ATTRS and isinstance(node.ctx, ast.Load):
                    self.add("precision", line, f"uses {name}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for m in mods:
                    if m.split(".")[0] == "ctypes":
                        self.add("introspection", line, "imports ctypes (raw memory and C calls)")
                    if m.split(".")[0] in ("threading", "_thread", "multiprocessing", "asyncio") or \
                            m.startswith("concurrent"):
                        self.add("streams-threads", line, f"imports {m}")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                self.check_cpp(node.value, line)

    def check_store(self, target, line, deleting=False):
        if isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                self.check_store(t, line, deleting)
            return
        if isinstance(target, ast.Subscript):
            name = self.dotted(target.value) or ""
            if name in ("sys.modules", "builtins.__dict__", "__builtins__"):
                self.add("monkeypatch", line, f"writes {name}[...]")
            return
        if not isinstance(target, ast.Attribute):
            return
        name = self.dotted(target)
        if not name:
            return
        root = name.split(".")[0]
        if root == "self" or root not in self.imported_roots():
            return
        verb = "deletes" if deleting else "assigns"
        if name.startswith("torch.backends.") or name.startswith("torch._C._set"):
            rule = "precision" if any(s in name for s in PRECISION_SETTINGS) else "global-setting"
            self.add(rule, line, f"{verb} {name}")
        else:
            self.add("monkeypatch", line, f"{verb} {name}: replaces part of an imported module or class")

    def check_call_anywhere(self, call: ast.Call, line):
        name = self.dotted(call.func) or ""
        if name in ("setattr", "delattr", "builtins.setattr") and call.args:
            obj = self.dotted(call.args[0]) or ""
            root = obj.split(".")[0]
            if root and root != "self" and root in self.imported_roots():
                self.add("monkeypatch", line, f"{name}({obj}, ...): changes an imported module or class")
        if name in INTROSPECTION:
            self.add("introspection", line, f"calls {name}")
        if name in STREAM_CALLS or name.startswith(CONCURRENCY_PREFIXES):
            self.add("streams-threads", line, f"calls {name}")
        if any(s in name for s in PRECISION_SETTINGS):
            self.add("precision", line, f"calls {name}")
        elif name.startswith("torch.") and name.split(".")[-1].startswith("set_") and \
                not name.startswith("torch.cuda.set_device") and name != "torch.set_grad_enabled":
            self.add("global-setting", line, f"calls {name}")
        if isinstance(call.func, ast.Attribute) and call.func.attr in PRECISION_METHODS and not call.args:
            self.add("precision", line, f".{call.func.attr}() casts to a lower precision")

    def check_cpp(self, text: str, line: int):
        if "(" not in text or len(text) < 40:
            return
        for m in CPP_STREAMS.finditer(text):
            self.add("streams-threads", line + text[:m.start()].count("\n"),
                     f"C++/CUDA source uses {m.group(1)}")
        found = sorted({m.group(1) for m in CPP_PRECISION.finditer(text)})
        if found:
            self.add("precision", line, f"C++/CUDA source uses {', '.join(found)}")
        aten = sorted({m.group(1) or m.group(2) for m in CPP_ATEN.finditer(text)} - CPP_NONCOMPUTE)
        if aten:
            self.add("aten-in-extension", line,
                     "C++ source calls library ops: " + ", ".join(aten[:12]) + (" ..." if len(aten) > 12 else ""))

    # ---------------------------------------------------------------- forward path
    def forward_rules(self):
        cls, fwd = self.find_method("ModelNew", "forward")
        if fwd is None:
            bases = self.base_names("ModelNew")
            if any(b == "Model" or b.endswith(".Model") for b in bases):
                self.add("reference-call", self.classes["ModelNew"].lineno,
                         "ModelNew inherits forward from the reference Model")
            else:
                self.add("forward-no-kernel", self.classes["ModelNew"].lineno, "ModelNew has no forward")
            return
        if cls.name == "Model":
            self.add("reference-call", fwd.lineno, "ModelNew inherits forward from the reference Model")
        self.kernel_calls = 0
        self.compute_calls = 0
        seen = set()
        todo = [("ModelNew", cls, fwd)]
        while todo:
            owner, cls, fn = todo.pop()
            if id(fn) in seen:
                continue
            seen.add(id(fn))
            todo.extend(self.scan_function(owner, cls, fn))
        if self.kernel_calls == 0:
            what = "computes with PyTorch only" if self.compute_calls else "calls no kernel"
            self.add("forward-no-kernel", fwd.lineno,
                     f"ModelNew.forward {what}: no call of an extension, custom op or triton kernel")

    def scan_function(self, owner: str, cls, fn) -> list:
        """Classify the calls in one function of the forward path; return functions it reaches."""
        more = []
        attrs = self.self_attributes(owner) if owner else {}
        # local names bound to an extension handle: ext = self.ext / ext = _ext
        local_ext = set()
        for node in ast.walk(fn):
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                v = node.value
                if (isinstance(v, ast.Name) and v.id in self.ext_names) or self.is_ext_expr(v) or (
                        isinstance(v, ast.Attribute) and isinstance(v.value, ast.Name) and v.value.id == "self"
                        and self.attr_kind(attrs.get(v.attr))[0] == "ext"):
                    local_ext.add(node.targets[0].id)
        for node in ast.walk(fn):
            line = getattr(node, "lineno", fn.lineno)
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.MatMult):
                self.compute_calls += 1
                self.add("torch-compute", line, "the @ operator (a PyTorch matmul) on the forward path")
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = self.dotted(func) or ""
            # super().method(...)
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Call) and \
                    self.dotted(func.value.func) == "super":
                base_cls, m = self.find_method(owner, func.attr, after=cls)
                if m is not None:
                    if base_cls.name == "Model" and func.attr == "forward":
                        self.add("reference-call", line, "super().forward(...) runs the reference Model")
                    more.append((owner, base_cls, m))
                elif func.attr == "forward" and any(b == "Model" or b.endswith(".Model")
                                                    for b in self.base_names(owner)):
                    self.add("reference-call", line, "super().forward(...) runs the reference Model")
                continue
            # self.method(...) / self.attr(...) / self.attr.fn(...)
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self":
                mcls, m = self.find_method(owner, func.attr)
                if m is not None:
                    more.append((owner, mcls, m))
                    continue
                kind, what = self.attr_kind(attrs.get(func.attr))
                self.classify_attr_call(kind, what, f"self.{func.attr}", line, more, call_forward=True)
                continue
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Attribute) and \
                    isinstance(func.value.value, ast.Name) and func.value.value.id == "self":
                kind, what = self.attr_kind(attrs.get(func.value.attr))
                if kind:
                    self.classify_attr_call(kind, what, f"self.{func.value.attr}.{func.attr}", line, more,
                                            call_forward=func.attr in ("forward", "__call__"))
                    continue
            # module-level extension handle: ext.fn(...)
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                    (func.value.id in self.ext_names or func.value.id in local_ext):
                self.kernel_calls += 1
                continue
            # triton kernel[grid](...)
            if isinstance(func, ast.Subscript) and isinstance(func.value, ast.Name) and \
                    func.value.id in self.triton_kernels:
                self.kernel_calls += 1
                continue
            if name == "Model.forward" or name.endswith(".Model.forward") or \
                    (isinstance(func, ast.Call) and (self.dotted(func.func) or "") in ("Model",)):
                self.add("reference-call", line, f"{name or 'Model(...)(...)'} runs the reference Model")
                continue
            if name in self.functions:
                more.append(("", None, self.functions[name]))
                continue
            if isinstance(func, ast.Call):   # nn.ReLU()(x)
                inner = self.dotted(func.func) or ""
                if inner.startswith("torch.nn.") and inner.split(".")[-1] not in NN_CONTAINERS:
                    self.compute_calls += 1
                    self.add("torch-compute", line, f"{inner}(...)(...) computes with PyTorch")
                continue
            if name.startswith("torch."):
                self.classify_torch_call(name, line)
                continue
            if isinstance(func, ast.Attribute) and func.attr in COMPUTE_METHODS and \
                    not (isinstance(func.value, ast.Name) and func.value.id in ("math", "builtins", "self")):
                self.compute_calls += 1
                self.add("torch-compute", line, f"tensor method .{func.attr}() on the forward path")
        return more

    def classify_attr_call(self, kind, what, text, line, more, call_forward):
        if kind == "ext":
            self.kernel_calls += 1
        elif kind == "nn":
            if what not in NN_CONTAINERS:
                self.compute_calls += 1
                self.add("torch-compute", line, f"{text}(...) calls a torch.nn.{what} module")
        elif kind == "ref":
            self.add("reference-call", line, f"{text}(...) calls an instance of the reference Model")
        elif kind == "class" and call_forward:
            c, m = self.find_method(what, "forward")
            if m is not None:
                more.append((what, c, m))

    def classify_torch_call(self, name: str, line: int):
        if name.startswith("torch.ops."):
            ns = name.split(".")[2] if name.count(".") >= 2 else ""
            if ns in ("aten", "prims", "quantized", "_c10d_functional"):
                self.compute_calls += 1
                self.add("torch-compute", line, f"{name} is a PyTorch op")
            else:
                self.kernel_calls += 1
            return
        if name.startswith(TORCH_NONCOMPUTE_PREFIXES):
            return
        if name.startswith("torch.nn.functional.") or name.startswith("torch.nn."):
            last = name.split(".")[-1]
            if last not in NN_CONTAINERS and not last.startswith("_"):
                self.compute_calls += 1
                self.add("torch-compute", line, f"{name} computes with PyTorch")
            return
        last = name.split(".")[-1]
        if name.count(".") == 1 and last not in TORCH_NONCOMPUTE and not last.startswith("_") \
                and not last[:1].isupper():
            self.compute_calls += 1
            self.add("torch-compute", line, f"{name} computes with PyTorch")
