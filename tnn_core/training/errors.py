"""Exception types raised by training and evaluation.

The ``tnn train`` and ``tnn evaluate`` commands print each of them as one
line and exit with status 1.
"""

from __future__ import annotations

__all__ = ["TrainingError", "DataError", "CheckpointError", "NonFiniteLossError", "MissingDependencyError"]


class TrainingError(RuntimeError):
    """Training or evaluation cannot start or cannot go on."""


class DataError(TrainingError, ValueError):
    """A dataset name, folder, file or its contents is invalid."""


class CheckpointError(TrainingError, ValueError):
    """A checkpoint file is missing, unreadable or not a ``tnn train`` checkpoint."""


class NonFiniteLossError(TrainingError, FloatingPointError):
    """The training loss became NaN or infinite."""


class MissingDependencyError(TrainingError, ImportError):
    """An optional package that training or a dataset needs is not installed."""


def require(module_name: str, extra: str, purpose: str) -> None:
    """Import ``module_name`` or raise ``MissingDependencyError`` naming the ``pip install`` to run."""
    import importlib

    try:
        importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{purpose} needs the Python package {module_name!r}, which is not installed; "
            f"run: pip install 'pytorch-tnn[{extra}]'"
        ) from exc
