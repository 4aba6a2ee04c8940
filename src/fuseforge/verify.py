"""verify: does a candidate compute the same function as the reference?

Both models are built after the same seed (their state_dicts must be identical), then run on
several sets of fresh random inputs from the problem's own get_inputs(), each forward after
the same seed (dropout draws alike). Outputs, mutated inputs and updated buffers are
compared with atol/rtol; NaN where the reference has none fails; kernel outputs are
poisoned first so that an element left unwritten cannot pass.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

FLOAT32_TOL = 1e-2   # KernelBench's atol = rtol for float32


@dataclass
class VerifyResult:
    device: str
    trials: int
    passed: bool
    max_abs: float = 0.0          # largest |new - ref| over all outputs and trials
    max_rel: float = 0.0          # largest normwise ‖new - ref‖ / ‖ref‖
    failures: list[str] = field(default_factory=list)


def _compare(tag: str, new, ref, atol: float, rtol: float, result: VerifyResult) -> None:
    """The same comparison as `fuseforge check` (structure, shape/dtype/device, NaN/Inf
    positions, tolerance); max_rel here is normwise, ‖new - ref‖ / ‖ref‖."""
    from .check.compare import compare, error_vs
    c = compare(tag, new, ref, atol, rtol)
    result.failures.extend(c.failures)
    result.max_abs = max(result.max_abs, c.max_abs)
    err = error_vs(new, ref)
    if err is not None:
        result.max_rel = max(result.max_rel, err[0])


def _set_poison(model, on: bool) -> None:
    import sys
    ext = getattr(sys.modules.get(type(model).__module__), "_ext", None)
    if ext is not None and hasattr(ext, "set_poison"):
        ext.set_poison(on)


def verify(problem, new_cls, *, device: str = "cpu", trials: int = 5, atol: float = FLOAT32_TOL,
           rtol: float = FLOAT32_TOL, seed: int = 42) -> VerifyResult:
    """Check `new_cls(*init)` against `problem.model_cls(*init)` on fresh inputs."""
    result = VerifyResult(device=str(device), trials=trials, passed=False)
    init = problem.init_args()
    ref = problem.build(seed)
    torch.manual_seed(seed)
    new = new_cls(*init)
    ref_sd, new_sd = ref.state_dict(), new.state_dict()
    if list(ref_sd) != list(new_sd):
        result.failures.append(f"state_dict names differ: {list(new_sd)} vs {list(ref_sd)}")
        return result
    for key in ref_sd:
        if ref_sd[key].shape != new_sd[key].shape or not torch.equal(ref_sd[key], new_sd[key]):
            result.failures.append(f"parameter {key} differs after the same seed")
    if result.failures:
        return result
    ref.to(device)
    new.to(device)
    for trial in range(trials):
        inputs = problem.inputs(seed + 1 + trial, device)
        if all(isinstance(x, torch.Tensor) and x.numel() and not x.any() for x in inputs):
            result.failures.append("get_inputs() returned all-zero tensors: a check on zeros proves little")
        ref_in = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
        new_in = [x.clone() if isinstance(x, torch.Tensor) else x for x in inputs]
        with torch.no_grad():
            torch.manual_seed(seed + 1000 + trial)
            ref_out = ref(*ref_in)
            torch.manual_seed(seed + 1000 + trial)
            _set_poison(new, True)
            try:
                new_out = new(*new_in)
            finally:
                _set_poison(new, False)
        if device != "cpu":
            torch.cuda.synchronize()
        tag = f"trial {trial}"
        _compare(f"{tag} output", new_out, ref_out, atol, rtol, result)
        _compare(f"{tag} inputs after the call", new_in, ref_in, atol, rtol, result)
        ref_buffers = dict(ref.named_buffers())
        new_buffers = dict(new.named_buffers())
        missing = [n for n in ref_buffers if n not in new_buffers]
        if missing:
            result.failures.append(f"buffers missing from the candidate: {missing}")
        else:  # the candidate may hold extra private buffers; compare the reference's
            _compare(f"{tag} buffers after the call", {n: new_buffers[n] for n in ref_buffers},
                     ref_buffers, atol, rtol, result)
        if result.failures:
            break
    result.passed = not result.failures
    return result
