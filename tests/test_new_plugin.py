"""``tnn new-plugin``: the generated package installs, registers its cell and passes its own test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tnn_core import TemporalGraph
from tnn_core.cli.main import main
from tnn_core.registry import registry
from tnn_core.scaffold import package_names

CELL_NAME = "ScaffoldLeakyCell"
DISTRIBUTION, PACKAGE = package_names(CELL_NAME)


def pip(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", *arguments], capture_output=True, text=True, timeout=300, check=False
    )


def graph_config() -> dict:
    return {
        "input_shape": [2, 6, 6],
        "num_timesteps": 3,
        "input_nodes": ["conv"],
        "output_node": "conv",
        "nodes": [
            {
                "name": "conv",
                "shape_from": None,
                "pre_memory": {"name": "Conv2dCell", "out_channels": 4, "ksize": 3, "padding": 1},
                "recurrent_cell": {"name": CELL_NAME, "leak": 0.25},
            }
        ],
        "edges": [],
    }


def test_package_names() -> None:
    assert package_names("LeakyCell") == ("tnn-cells-leaky-cell", "tnn_cells_leaky_cell")
    assert package_names("HTTPGateCell") == ("tnn-cells-http-gate-cell", "tnn_cells_http_gate_cell")
    assert package_names("my_cell2") == ("tnn-cells-my-cell2", "tnn_cells_my_cell2")


def test_generated_plugin_installs_and_conforms(tmp_path: Path) -> None:
    assert main(["new-plugin", "cell", CELL_NAME, "--dir", str(tmp_path)]) == 0
    target = tmp_path / DISTRIBUTION
    assert (target / "pyproject.toml").is_file()
    assert (target / PACKAGE / "cell.py").is_file()
    assert (target / "tests" / "test_conformance.py").is_file()
    assert (target / "README.md").is_file()
    assert f'{CELL_NAME} = "{PACKAGE}.cell:{CELL_NAME}"' in (target / "pyproject.toml").read_text()

    installed = pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(target))
    try:
        assert installed.returncode == 0, installed.stdout + installed.stderr
        registry.refresh()
        entries = [entry for entry in registry.entries("cell") if entry.name == CELL_NAME]
        assert [entry.distribution for entry in entries] == [DISTRIBUTION]

        graph = TemporalGraph(graph_config())
        stimulus = torch.randn(2, 2, 6, 6)
        assert graph(stimulus).shape == (2, 4, 6, 6)
        assert graph.full_unroll(stimulus).shape == (2, 4, 6, 6)

        generated_tests = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(target / "tests")],
            capture_output=True, text=True, timeout=600, cwd=tmp_path, check=False,
        )
        assert generated_tests.returncode == 0, generated_tests.stdout + generated_tests.stderr
    finally:
        removed = pip("uninstall", "--yes", DISTRIBUTION)
        registry.refresh()
        assert removed.returncode == 0, removed.stdout + removed.stderr


def test_existing_folder_is_rejected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / DISTRIBUTION).mkdir()
    assert main(["new-plugin", "cell", CELL_NAME, "--dir", str(tmp_path)]) == 1
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["3Cell", "my-cell", "class", "_"])
def test_invalid_class_name_is_rejected(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "cell", name, "--dir", str(tmp_path)]) == 1
    assert "invalid cell name" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_unsupported_kind_lists_supported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["new-plugin", "harbor", "MyHarbor", "--dir", str(tmp_path)]) == 1
    assert "supported kinds: cell" in capsys.readouterr().err


def test_unknown_kind_is_usage_error(tmp_path: Path) -> None:
    assert main(["new-plugin", "schedule", "MySchedule", "--dir", str(tmp_path)]) == 2
