"""The errors fuseforge reports to its users: each names its cause in one line."""


class FuseforgeError(Exception):
    """Base class: a failure with a message meant for the user, not a traceback."""


class ConfigError(FuseforgeError):
    """A setting (an environment variable such as FUSEFORGE_GEMM) has a value fuseforge does not know."""


class ProblemError(FuseforgeError):
    """The problem file or module cannot be used (missing names, import error, model fails)."""


class CaptureError(FuseforgeError):
    """torch.export could not capture the model, or captured something we cannot represent."""


class BuildError(FuseforgeError):
    """The generated C++/CUDA failed to compile or link; `source_path` holds the generated file."""

    def __init__(self, message, source_path=None, log=""):
        super().__init__(message)
        self.source_path = source_path
        self.log = log


class VerifyError(FuseforgeError):
    """The generated model does not compute the same function as the reference."""
