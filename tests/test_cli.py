"""The ``tnn`` command: plugins, validate, summary, run, convert-ptnn, usage errors and help text."""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tests.conftest import parity_tolerance
from tnn_core.cli.main import build_parser, main


def chain_config() -> dict[str, Any]:
    """Return a valid two-node chain on 3x6x6 stimuli with 3 time steps."""

    def node(name: str, shape_from: str | None) -> dict[str, Any]:
        return {"name": name, "shape_from": shape_from, "pre_memory": {"name": "Conv2dCell", "out_channels": 2, "ksize": 3, "padding": 1}}

    return {
        "nodes": [node("conv1", None), node("conv2", "conv1")],
        "edges": [{"from": "conv1", "to": "conv2"}],
        "input_nodes": ["conv1"],
        "output_node": "conv2",
        "input_shape": [3, 6, 6],
        "num_timesteps": 3,
    }


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(chain_config()), encoding="utf-8")
    return path


@pytest.fixture
def invalid_config_file(tmp_path: Path) -> Path:
    config = chain_config()
    config["edges"][0]["to"] = "conv9"
    config["nodes"][1]["pre_memory"]["kszie"] = 3
    path = tmp_path / "invalid.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def tnn_executable() -> Path:
    path = Path(sys.executable).parent / "tnn"
    if not path.is_file():
        pytest.skip(f"the tnn executable is not installed next to {sys.executable}")
    return path


def subcommand_parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


# -- plugins ---------------------------------------------------------------------------------


def test_plugins_lists_kinds(capsys):
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    for heading in ("recurrent cells (tnn.cells)", "harbor policies (tnn.harbors)", "memory ops (tnn.memory_ops)", "unroll schedules (tnn.schedules)"):
        assert heading in out, f"{heading!r} missing from:\n{out}"


def test_plugins_shows_distribution(capsys):
    assert main(["plugins", "--kind", "cell"]) == 0
    out = capsys.readouterr().out
    version = importlib.metadata.version("pytorch-tnn")
    for name in ("IdentityCell", "GRUCell", "ConvRNNBasicCell"):
        line = next((line for line in out.splitlines() if line.split()[:1] == [name]), None)
        assert line is not None, f"{name} missing from:\n{out}"
        assert f"pytorch-tnn {version}" in line, line
    assert "memory ops" not in out, "--kind cell listed other kinds"


# -- validate ------------------------------------------------------------------------------


def test_validate_ok(config_file: Path, capsys):
    assert main(["validate", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert f"{config_file}: ok (2 nodes, 1 edges, 0 feedback)" in out, out


def test_validate_invalid(invalid_config_file: Path, capsys):
    assert main(["validate", str(invalid_config_file)]) == 1
    captured = capsys.readouterr()
    assert f"{invalid_config_file}: invalid" in captured.err, captured.err
    assert "edges[0].to: unknown node 'conv9'" in captured.err, captured.err
    assert "nodes[conv2].pre_memory.kszie" in captured.err, captured.err
    assert "Traceback" not in captured.err


def test_validate_mixed(config_file: Path, invalid_config_file: Path, capsys):
    assert main(["validate", str(config_file), str(invalid_config_file)]) == 1
    captured = capsys.readouterr()
    assert f"{config_file}: ok" in captured.out, captured.out
    assert f"{invalid_config_file}: invalid" in captured.err, captured.err


def test_validate_missing_file(tmp_path: Path, capsys):
    path = tmp_path / "absent.yaml"
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "not found" in err, err
    assert "Traceback" not in err


def test_validate_subprocess(config_file: Path, invalid_config_file: Path):
    result = subprocess.run(
        [str(tnn_executable()), "validate", str(config_file), str(invalid_config_file)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1, result.stderr
    assert f"{config_file}: ok" in result.stdout, result.stdout
    assert "edges[0].to" in result.stderr, result.stderr
    assert "nodes[conv2].pre_memory.kszie" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


# -- summary -------------------------------------------------------------------------------------


def test_summary_parameter_count(parity_dir: Path, capsys):
    case = parity_dir / "test_resnet18_bn_timevary"
    facts = json.loads((case / "facts.json").read_text(encoding="utf-8"))
    expected = facts["total_params_after_forward"]
    assert main(["summary", str(case / "original_config.json"), "--input-shape", "3", "224", "224"]) == 0
    out = capsys.readouterr().out
    assert f"total parameters: {expected:,}" in out, out
    assert "feedback edges: none" in out, out
    assert "input_shape: [3, 224, 224]" in out, out


# -- run ---------------------------------------------------------------------------------------


def test_run_prints_steps(config_file: Path, capsys):
    assert main(["run", str(config_file), "--batch", "1"]) == 0
    out = capsys.readouterr().out
    for t in range(3):
        assert f"step {t}: output [1, 2, 6, 6]" in out, out
    assert "step 3" not in out, out
    assert re.search(r"biological unroll of 3 steps, batch 1: [0-9.]+ ms", out), out


def test_run_full_mode(config_file: Path, capsys):
    assert main(["run", str(config_file), "--mode", "full", "--n-times", "2"]) == 0
    out = capsys.readouterr().out
    assert "step 1: output [2, 2, 6, 6]" in out, out
    assert re.search(r"full unroll of 2 steps, batch 2: [0-9.]+ ms", out), out


def test_run_input_and_save(config_file: Path, tmp_path: Path, capsys):
    x = np.random.default_rng(0).standard_normal((2, 3, 3, 6, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out_path = tmp_path / "out.pt"
    assert main(["run", str(config_file), "--input", str(tmp_path / "x.npy"), "--save", str(out_path)]) == 0
    assert f"saved outputs [2, 3, 2, 6, 6] to {out_path}" in capsys.readouterr().out
    saved = torch.load(out_path, weights_only=True)
    assert saved.shape == (2, 3, 2, 6, 6)
    assert not list(tmp_path.glob("*.tmp")), "a temporary file was left behind"


def test_run_missing_input(config_file: Path, tmp_path: Path, capsys):
    assert main(["run", str(config_file), "--input", str(tmp_path / "absent.npy")]) == 1
    err = capsys.readouterr().err
    assert "not found" in err, err


# -- convert-ptnn ----------------------------------------------------------------------------


def test_convert_ptnn_then_run(parity_dir: Path, tmp_path: Path, capsys):
    case_dir = parity_dir / "test_feedforward"
    case = torch.load(case_dir / "case.pt", weights_only=True)
    config = case_dir / "config.json"

    torch.save(case["state_dict"], tmp_path / "ptnn.pt")
    torch.save({"state_dict": {f"model.{k}": v for k, v in case["state_dict"].items()}}, tmp_path / "lightning.ckpt")
    for source in ("ptnn.pt", "lightning.ckpt"):
        assert main(["convert-ptnn", str(config), str(tmp_path / source), "-o", str(tmp_path / f"{source}.converted.pt")]) == 0, source
    capsys.readouterr()

    from_pt = torch.load(tmp_path / "ptnn.pt.converted.pt", weights_only=True)
    from_ckpt = torch.load(tmp_path / "lightning.ckpt.converted.pt", weights_only=True)
    assert sorted(from_pt) == sorted(from_ckpt)
    for key in from_pt:
        torch.testing.assert_close(from_ckpt[key], from_pt[key], rtol=0, atol=0, msg=key)

    np.save(tmp_path / "x.npy", case["input5d"].float().numpy())
    out_path = tmp_path / "out.pt"
    args = ["run", str(config), "--weights", str(tmp_path / "ptnn.pt.converted.pt"), "--input", str(tmp_path / "x.npy"), "--save", str(out_path)]
    assert main(args) == 0
    outputs = torch.load(out_path, weights_only=True)
    reference = case["bio_out_all_5d"].float()
    torch.testing.assert_close(outputs, reference, **parity_tolerance(reference))


def test_convert_ptnn_wrong_checkpoint(parity_dir: Path, tmp_path: Path, capsys):
    case = torch.load(parity_dir / "test_feedforward" / "case.pt", weights_only=True)
    state = dict(case["state_dict"])
    del state["output._pre_memory.conv.bias"]
    torch.save(state, tmp_path / "partial.pt")
    out_path = tmp_path / "converted.pt"
    assert main(["convert-ptnn", str(parity_dir / "test_feedforward" / "config.json"), str(tmp_path / "partial.pt"), "-o", str(out_path)]) == 1
    err = capsys.readouterr().err
    assert "nodes.output.pre_memory.conv.bias" in err, err
    assert not out_path.exists(), "a failed conversion wrote its output"


# -- usage and help ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [[], ["no-such-command"], ["run"], ["run", "x.json", "--mode", "sideways"], ["run", "x.json", "--n-times", "two"], ["convert-ptnn", "x.json", "y.pt"]],
    ids=["no-command", "unknown-command", "run-no-config", "run-bad-mode", "run-bad-n-times", "convert-no-output"],
)
def test_usage_error_exit_code(argv: list[str], capsys):
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_every_option_has_help(capsys):
    for name, parser in subcommand_parsers().items():
        assert main([name, "--help"]) == 0, name
        text = capsys.readouterr().out
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            label = "/".join(action.option_strings) or action.dest
            assert action.help and action.help != argparse.SUPPRESS, f"tnn {name}: {label} has no help text"
            for option in action.option_strings:
                assert option in text, f"tnn {name} --help does not show {option}"


def test_validate_builds_by_default(tmp_path, capsys):
    config = {
        "input_shape": [1, 8, 8], "input_nodes": ["a"], "output_node": "a", "edges": [],
        "nodes": [{"name": "a", "pre_memory": {"name": "Conv2dCell", "out_channels": 2, "ksize": 3, "activation": "Relu"}}],
    }
    path = tmp_path / "bad_activation.json"
    path.write_text(json.dumps(config))
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "Did you mean 'ReLU'?" in err, err
    assert main(["validate", "--no-build", str(path)]) == 0


def test_validate_follows_training_file(tmp_path, capsys):
    graph = {
        "input_shape": [1, 8, 8], "input_nodes": ["a"], "output_node": "a", "edges": [],
        "nodes": [{"name": "a", "pre_memory": {"name": "Conv2dCell", "out_channels": 2, "ksize": 3}}],
    }
    (tmp_path / "graph.json").write_text(json.dumps(graph))
    (tmp_path / "train.yaml").write_text("model:\n  config: graph.json\n  input_shape: [1, 10, 10]\ndata:\n  name: digits\n")
    assert main(["validate", str(tmp_path / "train.yaml")]) == 0
    assert "ok (1 nodes" in capsys.readouterr().out


def test_run_loads_train_checkpoint_keys(tmp_path, capsys):
    from tnn_core import TemporalGraph

    graph = {
        "input_shape": [1, 8, 8], "input_nodes": ["a"], "output_node": "a", "edges": [],
        "nodes": [{"name": "a", "pre_memory": {"name": "Conv2dCell", "out_channels": 2, "ksize": 3}}],
    }
    config_path = tmp_path / "graph.json"
    config_path.write_text(json.dumps(graph))
    state = {f"model.{k}": v for k, v in TemporalGraph(graph).state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "last.ckpt")
    assert main(["run", str(config_path), "--weights", str(tmp_path / "last.ckpt"), "--n-times", "2"]) == 0
    torch.save({"a._pre_memory.conv.weight": torch.zeros(2, 1, 3, 3)}, tmp_path / "ptnn.pt")
    assert main(["run", str(config_path), "--weights", str(tmp_path / "ptnn.pt")]) == 1
    assert "tnn convert-ptnn" in capsys.readouterr().err
