"""Reading and checking ``tnn train`` checkpoints before anything uses them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError

__all__ = ["CHECKPOINT_DIR", "LAST_CHECKPOINT", "read_checkpoint", "last_checkpoint_path"]

#: Checkpoint folder inside a run folder, and the file name of the latest checkpoint.
CHECKPOINT_DIR = "checkpoints"
LAST_CHECKPOINT = "last.ckpt"

REQUIRED_KEYS = ("state_dict", "epoch", "global_step", "hyper_parameters")


def last_checkpoint_path(run_dir: str | Path) -> Path:
    """Return where a run folder keeps its latest checkpoint."""
    return Path(run_dir) / CHECKPOINT_DIR / LAST_CHECKPOINT


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint on the CPU and check that ``tnn train`` wrote it.

    Loads with ``weights_only=True``, so a file cannot run code. Raises
    ``CheckpointError`` naming the file when it is missing, unreadable or
    lacks the entries a ``tnn train`` checkpoint has.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} not found; train first with `tnn train` or check the path")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} is not a file")

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for truncated or foreign files
        raise CheckpointError(
            f"checkpoint {path} is corrupt or not a PyTorch checkpoint (torch.load failed with {type(exc).__name__}); "
            f"use another checkpoint or train again"
        ) from exc

    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"checkpoint {path} contains a {type(checkpoint).__name__}, not a tnn train checkpoint")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise CheckpointError(
            f"checkpoint {path} was not written by tnn train (it has no {', '.join(missing)}); "
            f"use a checkpoint from a run folder's {CHECKPOINT_DIR}/ folder"
        )
    return checkpoint
