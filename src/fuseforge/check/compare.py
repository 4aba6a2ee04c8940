"""Output comparison: structure, shape/dtype/device, NaN/Inf positions, tolerance by dtype.

The functions used here are bound when this module is imported, which the worker does
before it imports the candidate (and guards restore anything patched later).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.utils._pytree as pytree

# KernelBench uses atol = rtol = 1e-2 for float32; the half types get a looser default.
TOLERANCES = {
    torch.float64: (1e-5, 1e-5),
    torch.float32: (1e-2, 1e-2),
    torch.float16: (5e-2, 5e-2),
    torch.bfloat16: (5e-2, 5e-2),
}
_isclose = torch.isclose
_isfinite = torch.isfinite
_equal = torch.equal


def tolerance(dtype: torch.dtype, atol: float | None, rtol: float | None) -> tuple[float, float]:
    da, dr = TOLERANCES.get(dtype, (1e-2, 1e-2))
    return (da if atol is None else atol, dr if rtol is None else rtol)


@dataclass
class Comparison:
    failures: list[str] = field(default_factory=list)
    max_abs: float = 0.0          # largest |new - ref| over finite elements
    max_rel: float = 0.0          # largest |new - ref| / |ref| over elements with |ref| > atol
    tol_ratio: float = 0.0        # largest |new - ref| / (atol + rtol |ref|): above 1 fails

    @property
    def ok(self) -> bool:
        return not self.failures


def compare(tag: str, new, ref, atol: float | None = None, rtol: float | None = None,
            result: Comparison | None = None) -> Comparison:
    result = result or Comparison()
    new_leaves, new_spec = pytree.tree_flatten(new)
    ref_leaves, ref_spec = pytree.tree_flatten(ref)
    if new_spec != ref_spec:
        result.failures.append(f"{tag}: output structure differs: {new_spec} vs {ref_spec}")
        return result
    for k, (a, b) in enumerate(zip(new_leaves, ref_leaves)):
        where = f"{tag}[{k}]" if len(ref_leaves) > 1 else tag
        if not isinstance(b, torch.Tensor):
            if isinstance(a, torch.Tensor) or a != b:
                result.failures.append(f"{where}: {a!r} != {b!r}")
            continue
        if not isinstance(a, torch.Tensor):
            result.failures.append(f"{where}: expected a tensor, got {type(a).__name__}")
            continue
        if a.shape != b.shape or a.dtype != b.dtype or a.device != b.device:
            result.failures.append(f"{where}: {a.dtype}{list(a.shape)} on {a.device}, expected "
                                   f"{b.dtype}{list(b.shape)} on {b.device}")
            continue
        if a.numel() == 0:
            continue
        if not (b.is_floating_point() or b.is_complex()):
            if not _equal(a, b):
                bad = int((a != b).sum())
                result.failures.append(f"{where}: {bad} of {a.numel()} element(s) differ (exact dtype {b.dtype})")
            continue
        at, rt = tolerance(b.dtype, atol, rtol)
        a64, b64 = a.detach().to(torch.float64), b.detach().to(torch.float64)
        fa, fb = _isfinite(a64), _isfinite(b64)
        # non-finite elements must match exactly: NaN where NaN, +inf where +inf
        nonfinite_ok = _equal(fa, fb) and _equal(torch.isnan(a64), torch.isnan(b64)) and \
            _equal(a64[~fb & ~torch.isnan(b64)], b64[~fb & ~torch.isnan(b64)])
        if not nonfinite_ok:
            bad = int((fa != fb).sum()) or int((torch.isnan(a64) != torch.isnan(b64)).sum()) or 1
            result.failures.append(f"{where}: NaN/Inf in {bad} element(s) where the reference differs")
        both = fa & fb
        diff = (a64 - b64).abs()[both]
        ref_abs = b64.abs()[both]
        if diff.numel():
            result.max_abs = max(result.max_abs, float(diff.max()))
            big = ref_abs > at
            if bool(big.any()):
                result.max_rel = max(result.max_rel, float((diff[big] / ref_abs[big]).max()))
            ratio = float((diff / (at + rt * ref_abs)).max())
            result.tol_ratio = max(result.tol_ratio, ratio)
            bad = int((diff > at + rt * ref_abs).sum())
            if bad:
                result.failures.append(f"{where}: {bad} of {a.numel()} element(s) differ beyond atol={at:g}, "
                                       f"rtol={rt:g} (max abs error {float(diff.max()):.3g})")
    return result


def error_vs(new, exact) -> tuple[float, float] | None:
    """(normwise relative error, max abs error) of new's floating outputs against a float64 run."""
    num = den = 0.0
    max_abs = 0.0
    seen = False
    for a, b in zip(pytree.tree_flatten(new)[0], pytree.tree_flatten(exact)[0]):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)) or not a.is_floating_point():
            continue
        if a.shape != b.shape or a.numel() == 0:
            return None
        a64, b64 = a.detach().to(torch.float64), b.detach().to(device=a.device, dtype=torch.float64)
        ok = _isfinite(a64) & _isfinite(b64)
        d = (a64 - b64)[ok]
        if d.numel():
            num += float((d * d).sum())
            den += float((b64[ok] * b64[ok]).sum())
            max_abs = max(max_abs, float(d.abs().max()))
            seen = True
    if not seen:
        return None
    rel = math.sqrt(num) / math.sqrt(den) if den > 0 else (0.0 if num == 0 else math.inf)
    return rel, max_abs
