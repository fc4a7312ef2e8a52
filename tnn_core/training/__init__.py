"""Training and evaluation of TNNs with PyTorch Lightning (the ``train`` extra).

Importing ``tnn_core`` or this package does not import Lightning; the
Lightning-based names below load on first access. ``datasets``,
``settings`` and ``readout`` need only torch (and the ``data`` extra for the
bundled datasets).
"""

from __future__ import annotations

import importlib
from typing import Any

from .errors import CheckpointError, DataError, MissingDependencyError, NonFiniteLossError, TrainingError

__all__ = [
    "TrainingError",
    "DataError",
    "CheckpointError",
    "NonFiniteLossError",
    "MissingDependencyError",
    "TrainSettings",
    "load_train_file",
    "TNNLightningModule",
    "TNNDataModule",
    "train",
    "evaluate_checkpoint",
    "evaluate_module",
    "load_dataset",
    "register_dataset",
    "known_dataset_names",
]

# name -> submodule that defines it; the Lightning-based ones import Lightning when first used
_LAZY = {
    "TrainSettings": "settings",
    "load_train_file": "settings",
    "TNNLightningModule": "module",
    "TNNDataModule": "datamodule",
    "train": "runner",
    "evaluate_checkpoint": "runner",
    "evaluate_module": "evaluation",
    "load_dataset": "datasets",
    "register_dataset": "datasets",
    "known_dataset_names": "datasets",
}

_LIGHTNING_MODULES = {"module", "datamodule", "runner", "evaluation"}


def __getattr__(name: str) -> Any:
    submodule = _LAZY.get(name)
    if submodule is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if submodule in _LIGHTNING_MODULES:
        require_training_packages()
    return getattr(importlib.import_module(f"{__name__}.{submodule}"), name)


def require_training_packages() -> None:
    """Raise ``MissingDependencyError`` naming the ``pip install`` when a ``train`` extra package is missing."""
    from .errors import require

    for module_name in ("pytorch_lightning", "torchmetrics"):
        require(module_name, "train", "training")
