"""ReciprocalGatedCell against pytorch-tnn's conformance kit, over its main option sets."""

from __future__ import annotations

from typing import Any

import pytest

from tnn_cells_rgc import ReciprocalGatedCell
from tnn_core.testing import check_cell

BASE: dict[str, Any] = {"out_channels": 4, "cell_depth": 3}

OPTION_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "feedback into input": {"feedback_entry": "input"},
    "feedback into cell": {"feedback_entry": "cell"},
    "no feedback input": {"fb_channels": None},
    "residual paths": {"cell_residual": True, "out_residual": True, "residual_to_cell_tau": True},
    "input to tau and gate": {"input_to_tau": True, "input_to_gate": True},
    "layernorm": {"layernorm": True},
    "time-varying batch norm": {"batchnorm": True, "batchnorm_timevary": True},
    "depth-separable": {"ff_depth_separable": True, "gate_depth_separable": True, "tau_depth_separable": True},
    "crelu cell": {"cell_activation": "CReLU"},
    "no cell": {"gate_filter_size": 0, "residual_to_out_gate": False},
    "other output channels": {"out_channels": 6, "input_to_out": True},
}


@pytest.mark.parametrize("options", list(OPTION_SETS.values()), ids=list(OPTION_SETS))
def test_cell_conforms(options: dict[str, Any]) -> None:
    check_cell(ReciprocalGatedCell, **{**BASE, **options})
