"""The plugin seen as installed and as absent, through ``tnn plugins`` and graph building.

The absent case runs in a subprocess that filters this distribution's entry
points out of ``tnn_core.registry``'s discovery, so the shared environment
keeps the plugin installed. Each subprocess imports torch, so the file takes
several seconds.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import tnn_cells_rgc
from tnn_core import TemporalGraph
from tnn_core.registry import registry

DISTRIBUTION = "tnn-cells-rgc"
VERSION = "0.1.0"
CELL = "ReciprocalGatedCell"
SUBPROCESS_TIMEOUT_S = 120

CONFIG: dict[str, Any] = {
    "input_shape": [2, 6, 6],
    "num_timesteps": 2,
    "input_nodes": ["V1"],
    "output_node": "V1",
    "nodes": [
        {
            "name": "V1",
            "shape_from": None,
            "harbor_policy": {"name": "ResizeConcat"},
            "pre_memory": {"name": "Identity"},
            "recurrent_cell": {"name": CELL, "out_channels": 2, "cell_depth": 3},
            "post_memory": {"name": "Identity"},
        }
    ],
    "edges": [],
}

# A child interpreter runs this with the config JSON as argv[1]. It hides this distribution's entry points,
# lists the cells and builds the config, then writes the listing, its exit code and the build error as JSON.
HIDDEN_PLUGIN_SCRIPT = """
import contextlib, io, json, sys

import tnn_core.registry as registry_module

discover = registry_module.entry_points

def entry_points_without_plugin(**kwargs):
    return [
        ep for ep in discover(**kwargs)
        if ep.dist is None or ep.dist.name.lower().replace("_", "-") != "tnn-cells-rgc"
    ]

registry_module.entry_points = entry_points_without_plugin

from tnn_core import ComponentNotFoundError, TemporalGraph
from tnn_core.cli.main import main

listing = io.StringIO()
with contextlib.redirect_stdout(listing):
    exit_code = main(["plugins", "--kind", "cell"])

result = {"listing": listing.getvalue(), "listing_exit_code": exit_code, "error_type": None, "error": None}
try:
    TemporalGraph(json.loads(sys.argv[1]))
except ComponentNotFoundError as exc:
    result["error_type"] = type(exc).__name__
    result["error"] = str(exc)
sys.stdout.write(json.dumps(result))
"""


def require_plugins_command() -> None:
    if importlib.util.find_spec("tnn_core.cli.plugins") is None:
        pytest.skip("`tnn plugins` is not available yet: tnn_core/cli/plugins.py is missing from this installation")


def tnn_command() -> list[str]:
    """Return the ``tnn`` console script next to this interpreter, or the module that it runs."""
    script = Path(sys.executable).with_name("tnn")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "tnn_core.cli.main"]


def run_checked(command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT_S, cwd=cwd)
    assert completed.returncode == 0, f"{command[:3]} exited {completed.returncode}:\n{completed.stderr}"
    return completed


def cell_line(listing: str) -> str | None:
    """Return the listing line of the RGC cell, or ``None`` when it is not listed."""
    for line in listing.splitlines():
        if line.split()[:1] == [CELL]:
            return line
    return None


@pytest.fixture(scope="module")
def hidden_plugin_result(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_plugins_command()
    completed = run_checked(
        [sys.executable, "-c", HIDDEN_PLUGIN_SCRIPT, json.dumps(CONFIG)], cwd=tmp_path_factory.mktemp("hidden")
    )
    return json.loads(completed.stdout)


# --- Installed ---------------------------------------------------------------------------------


def test_distribution_metadata() -> None:
    entry_points = [ep for ep in importlib.metadata.entry_points(group="tnn.cells") if ep.name == CELL]

    assert len(entry_points) == 1, entry_points
    assert entry_points[0].dist is not None
    assert entry_points[0].dist.name == DISTRIBUTION
    assert entry_points[0].dist.version == VERSION
    assert tnn_cells_rgc.__version__ == VERSION


def test_plugins_command_lists_cell(tmp_path: Path) -> None:
    require_plugins_command()

    completed = run_checked([*tnn_command(), "plugins", "--kind", "cell", "--load"], cwd=tmp_path)
    line = cell_line(completed.stdout)

    assert line is not None, f"{CELL} missing from `tnn plugins`:\n{completed.stdout}"
    assert f"{DISTRIBUTION} {VERSION}" in line
    assert line.split()[-1] == "loaded", line


def test_config_builds_with_plugin() -> None:
    # Control for the absent case below: the same config builds while the plugin is visible.
    graph = TemporalGraph(CONFIG)

    assert type(graph.nodes["V1"].recurrent_cell).__name__ == CELL
    assert registry.resolve("cell", CELL).distribution == DISTRIBUTION


# --- Absent --------------------------------------------------------------------------------------


def test_plugins_command_omits_hidden_cell(hidden_plugin_result: dict[str, Any]) -> None:
    listing = hidden_plugin_result["listing"]

    assert hidden_plugin_result["listing_exit_code"] == 0
    assert cell_line(listing) is None, listing
    assert DISTRIBUTION not in listing
    assert "IdentityCell" in listing


def test_build_without_plugin_names_cell(hidden_plugin_result: dict[str, Any]) -> None:
    error = hidden_plugin_result["error"]

    assert hidden_plugin_result["error_type"] == "ComponentNotFoundError", hidden_plugin_result
    assert f"unknown recurrent cell '{CELL}'" in error
    assert "nodes[V1].recurrent_cell.name" in error


def test_build_without_plugin_lists_installed_cells(hidden_plugin_result: dict[str, Any]) -> None:
    error = hidden_plugin_result["error"]
    assert error is not None, hidden_plugin_result
    available = error.split("Available recurrent cells:", 1)[1].split(".", 1)[0]

    installed = [name for name in registry.names("cell") if name != CELL]
    assert installed
    for name in installed:
        assert name in available, f"{name} missing from: {error}"
    assert CELL not in available


def test_build_without_plugin_points_to_package(hidden_plugin_result: dict[str, Any]) -> None:
    error = hidden_plugin_result["error"]

    assert error is not None, hidden_plugin_result
    assert f"plugin packages such as {DISTRIBUTION}" in error
    assert "tnn plugins" in error
