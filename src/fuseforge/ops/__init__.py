"""The op registry (see registry.py); importing this package registers every entry."""
from . import convs, gemm, losses, pointwise, rows, scans, windows  # noqa: F401  (register the entries)
from .registry import (FLOAT_DTYPES, GEMM, KERNEL_DTYPES, LOWER, POINTWISE, REGISTRY, ROW, SCAN, VIEW, WINDOW, Args,
                       OpDef, lookup, operand_dims)

__all__ = ["Args", "FLOAT_DTYPES", "GEMM", "KERNEL_DTYPES", "LOWER", "OpDef", "POINTWISE", "REGISTRY", "ROW", "SCAN",
           "VIEW", "WINDOW", "lookup", "operand_dims"]
