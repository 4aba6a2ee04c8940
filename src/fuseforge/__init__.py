"""fuseforge: PyTorch models → verified drop-in replacements built on fused CUDA kernels."""
from .errors import BuildError, CaptureError, FuseforgeError, ProblemError, VerifyError
from .pipeline import compile_module as compile  # noqa: A001  (fuseforge.compile, like torch.compile)
from .pipeline import optimize

__all__ = ["BuildError", "CaptureError", "FuseforgeError", "ProblemError", "VerifyError",
           "compile", "optimize"]
__version__ = "0.1.0"
