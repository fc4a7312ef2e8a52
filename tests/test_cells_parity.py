"""Parity of the built-in recurrent cells with PyTorchTNN's, on recorded single-cell runs.

Each recording contains a cell's constructor arguments, its state dict, four
steps of inputs and the outputs and states PyTorchTNN returned, computed in
float32 and again in float64. The cell is built here from the same arguments,
loaded with the same state dict and stepped the same way, feeding each
returned state into the next step.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pytest
import torch

from tests.conftest import PARITY_DIR, parity_tolerance

# The ReciprocalGatedCell recordings need fb_input/res_input and are tested with that cell.
SKIPPED_CLASSES = ("ReciprocalGatedCell",)


def _recording_names() -> list[str]:
    folder = PARITY_DIR / "cells"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.glob("*.pt") if not p.name.startswith(SKIPPED_CLASSES))


def _cell_class(name: str) -> type[torch.nn.Module]:
    """Load the cell class registered under ``name`` in the ``tnn.cells`` entry-point group."""
    entry_points = importlib.metadata.entry_points(group="tnn.cells", name=name)
    assert entry_points, f"no cell named {name!r} in the tnn.cells entry points"
    return next(iter(entry_points)).load()


def _as_float(tensor: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return tensor.to(dtype) if tensor.is_floating_point() else tensor


def _run_recording(path: Path, dtype: torch.dtype) -> tuple[dict, list[torch.Tensor], list[torch.Tensor | None]]:
    """Build the recorded cell in ``dtype``, run the recorded steps and return the recording, outputs and states."""
    recording = torch.load(path, weights_only=True)
    cell_class = _cell_class(recording["cell_class"])

    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        cell = cell_class(**recording["kwargs"])
        state_dict = {key: _as_float(value, dtype) for key, value in recording["state_dict"].items()}
        cell.load_state_dict(state_dict)
        cell.to(dtype).eval()

        outputs, states = [], []
        state = None
        with torch.no_grad():
            for step_input in recording["inputs"]:
                output, state = cell(step_input.to(dtype), state)
                outputs.append(output)
                states.append(state)
    finally:
        torch.set_default_dtype(default_dtype)
    return recording, outputs, states


def _assert_step_matches(actual: torch.Tensor | None, expected: torch.Tensor | None, what: str, float64: bool) -> None:
    if expected is None:
        assert actual is None, f"{what}: expected None, got a tensor"
        return
    assert actual is not None, f"{what}: expected a tensor of shape {tuple(expected.shape)}, got None"
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    torch.testing.assert_close(actual, expected, **parity_tolerance(expected, float64=float64), msg=what)


RECORDINGS = _recording_names()


def test_recordings_found(parity_dir: Path) -> None:
    assert RECORDINGS, f"no single-cell recordings in {parity_dir / 'cells'}"


@pytest.mark.parametrize("file_name", RECORDINGS)
def test_state_dict_keys_match(parity_dir: Path, file_name: str) -> None:
    recording = torch.load(parity_dir / "cells" / file_name, weights_only=True)
    cell = _cell_class(recording["cell_class"])(**recording["kwargs"])

    actual = [[key, list(value.shape)] for key, value in cell.state_dict().items()]
    expected = [[key, list(shape)] for key, shape in recording["state_dict_keys"]]
    assert actual == expected


@pytest.mark.parametrize("file_name", RECORDINGS)
def test_float32_steps_match(parity_dir: Path, file_name: str) -> None:
    recording, outputs, states = _run_recording(parity_dir / "cells" / file_name, torch.float32)

    assert len(outputs) == recording["n_steps"]
    for step, (output, expected) in enumerate(zip(outputs, recording["outputs"])):
        _assert_step_matches(output, expected, f"output at step {step}", float64=False)
    for step, (state, expected) in enumerate(zip(states, recording["states"])):
        _assert_step_matches(state, expected, f"state at step {step}", float64=False)


@pytest.mark.parametrize("file_name", RECORDINGS)
def test_float64_steps_match(parity_dir: Path, file_name: str) -> None:
    recording, outputs, states = _run_recording(parity_dir / "cells" / file_name, torch.float64)

    assert len(outputs) == recording["n_steps"]
    for step, (output, expected) in enumerate(zip(outputs, recording["outputs_f64"])):
        _assert_step_matches(output, expected, f"float64 output at step {step}", float64=True)
    for step, (state, expected) in enumerate(zip(states, recording["states_f64"])):
        _assert_step_matches(state, expected, f"float64 state at step {step}", float64=True)
