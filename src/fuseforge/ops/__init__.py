"""The op registry (see registry.py); importing this package registers every entry."""
from . import pointwise  # noqa: F401  (registers the pointwise entries)
from .registry import FLOAT_DTYPES, KERNEL_DTYPES, POINTWISE, REGISTRY, Args, OpDef, lookup

__all__ = ["Args", "FLOAT_DTYPES", "KERNEL_DTYPES", "OpDef", "POINTWISE", "REGISTRY", "lookup"]
