"""Parity of ReciprocalGatedCell with PyTorchTNN's cell on recorded runs.

Each recorded file holds the constructor kwargs, a state dict (float16 values),
four steps of inputs and the reference's outputs and states in float32 and
float64, recorded with PyTorchTNN commit 50713d98. The files live in ``ptnn-parity/cells``, found through the
``TNN_PARITY_DIR`` environment variable (pointing at ``ptnn-parity``) or
next to the repository as ``../shared/ptnn-parity``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from tnn_cells_rgc import ReciprocalGatedCell

REPO_ROOT = Path(__file__).resolve().parents[3]


def _parity_dir() -> Path:
    configured = os.environ.get("TNN_PARITY_DIR")
    base = Path(configured) if configured else REPO_ROOT.parent / "shared" / "ptnn-parity"
    return base / "cells"


PARITY_DIR = _parity_dir()
PARITY_FILES = sorted(PARITY_DIR.glob("ReciprocalGatedCell__*.pt")) if PARITY_DIR.is_dir() else []


def _run_recording(record: dict, dtype: torch.dtype) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Build the cell from the recording and run its steps in ``dtype`` with the reference's call convention."""
    cell = ReciprocalGatedCell(**record["kwargs"])
    state_dict = {
        key: value.to(torch.float32) if value.is_floating_point() else value
        for key, value in record["state_dict"].items()
    }
    cell.load_state_dict(state_dict, strict=True)
    cell = cell.to(dtype).eval()

    outputs, states = [], []
    state = None
    with torch.no_grad():
        for t in range(record["n_steps"]):
            fb_input = record["fb_inputs"][t].to(dtype) if record["fb_inputs"] is not None else None
            output, state = cell(
                record["inputs"][t].to(dtype),
                state,
                fb_input=fb_input,
                res_input=record["res_inputs"][t].to(dtype),
                curr_timestep=t,
            )
            outputs.append(output)
            states.append(state)
    return outputs, states


def _assert_close(actual: list[torch.Tensor], expected: list[torch.Tensor], label: str, rtol: float, atol_scale: float) -> None:
    assert len(actual) == len(expected), f"{label}: {len(actual)} steps, expected {len(expected)}"
    for t, (got, ref) in enumerate(zip(actual, expected)):
        atol = atol_scale * max(1.0, ref.abs().max().item())
        torch.testing.assert_close(got, ref, rtol=rtol, atol=atol, msg=lambda m: f"{label} at step {t}: {m}")


@pytest.mark.skipif(
    not PARITY_FILES,
    reason=f"no ReciprocalGatedCell__*.pt parity files in {PARITY_DIR}; set TNN_PARITY_DIR to the ptnn-parity folder",
)
@pytest.mark.parametrize("path", PARITY_FILES, ids=[p.stem.split("__", 1)[1] for p in PARITY_FILES])
class TestParity:
    def test_state_dict_keys_match(self, path: Path) -> None:
        record = torch.load(path, weights_only=True)
        cell = ReciprocalGatedCell(**record["kwargs"])
        expected = {key: tuple(shape) for key, shape in record["state_dict_keys"]}
        actual = {key: tuple(value.shape) for key, value in cell.state_dict().items()}
        assert actual == expected

    def test_float32_matches_reference(self, path: Path) -> None:
        record = torch.load(path, weights_only=True)
        outputs, states = _run_recording(record, torch.float32)
        _assert_close(outputs, record["outputs"], "output", rtol=1e-4, atol_scale=2e-5)
        _assert_close(states, record["states"], "state", rtol=1e-4, atol_scale=2e-5)

    def test_float64_matches_reference(self, path: Path) -> None:
        record = torch.load(path, weights_only=True)
        outputs, states = _run_recording(record, torch.float64)
        _assert_close(outputs, record["outputs_f64"], "float64 output", rtol=1e-9, atol_scale=1e-9)
        _assert_close(states, record["states_f64"], "float64 state", rtol=1e-9, atol_scale=1e-9)
