"""Shared fixtures: a fixed torch thread count and the PyTorchTNN parity recordings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# The test machines are shared 2-core boxes; a fixed thread count keeps
# numerics and timings comparable between runs.
torch.set_num_threads(int(os.environ.get("TNN_TEST_THREADS", "2")))

REPO_ROOT = Path(__file__).resolve().parents[1]
PARITY_DIR = Path(os.environ.get("TNN_PARITY_DIR", REPO_ROOT.parent / "shared" / "ptnn-parity"))


@pytest.fixture(scope="session")
def parity_dir() -> Path:
    """The folder of PyTorchTNN reference recordings; skips the test when it is absent."""
    if not PARITY_DIR.is_dir():
        pytest.skip(f"PyTorchTNN parity recordings not found at {PARITY_DIR} (set TNN_PARITY_DIR to point at them)")
    return PARITY_DIR


def parity_tolerance(reference: torch.Tensor, *, float64: bool = False, train_mode: bool = False) -> dict[str, float]:
    """Return ``rtol``/``atol`` for comparing against a recording, as the recordings' README recommends."""
    scale = max(1.0, float(reference.abs().max())) if reference.numel() else 1.0
    if float64:
        return {"rtol": 1e-9, "atol": 1e-9 * scale}
    if train_mode:
        return {"rtol": 1e-4, "atol": 1e-4 * scale}
    return {"rtol": 1e-4, "atol": 2e-5 * scale}
