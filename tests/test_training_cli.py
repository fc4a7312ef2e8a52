"""`tnn train` and `tnn evaluate` end to end on the tiny digits model, and their errors for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("pytorch_lightning")

from tnn_core.cli.main import main  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY_CONFIG = REPO_ROOT / "configs" / "digits_tiny.json"
QUICK = ["--max-samples", "200", "--batch-size", "32", "--no-progress-bar", "--threads", "2", "--accelerator", "cpu"]


def train_cli(*args: str) -> int:
    return main(["train", *args])


def test_train_and_evaluate_end_to_end(tmp_path, capsys):
    out = tmp_path / "run"

    code = train_cli(str(TINY_CONFIG), "--data", "digits", "--epochs", "2", "--lr", "0.01", "--out", str(out), *QUICK)
    printed = capsys.readouterr().out

    assert code == 0
    assert "accuracy by time step" in printed
    assert "t=4:" in printed
    for name in ("metrics.csv", "accuracy_by_step.png", "summary.json", "checkpoints/last.ckpt"):
        assert (out / name).is_file(), name
    assert list((out / "checkpoints").glob("best-*.ckpt"))
    assert (out / "accuracy_by_step.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["test"]["accuracy_by_step"]) == 4
    assert 0.0 <= summary["test"]["accuracy"] <= 1.0
    assert summary["test"]["samples"] == 40
    assert summary["parameters"]["total"] > 0
    assert summary["wall_time_s"] > 0
    assert summary["settings"]["data"]["name"] == "digits"
    assert summary["model_config"]["output_node"] == "readout"

    checkpoint = torch.load(out / "checkpoints" / "last.ckpt", weights_only=True)
    plugins = {(p["kind"], p["name"]): p for p in checkpoint["tnn"]["plugins"]}
    assert plugins[("cell", "GRUCell")]["distribution"] == "pytorch-tnn"
    assert plugins[("cell", "GRUCell")]["version"]
    assert checkpoint["tnn"]["versions"]["torch"] == str(torch.__version__)

    code = main(["evaluate", str(out / "checkpoints" / "last.ckpt"), "--out", str(tmp_path / "eval"), "--threads", "2"])
    printed = capsys.readouterr().out

    assert code == 0
    assert "accuracy by time step" in printed
    evaluation = json.loads((tmp_path / "eval" / "summary.json").read_text())
    assert evaluation["test"]["samples"] == 40
    assert (tmp_path / "eval" / "accuracy_by_step.png").is_file()


def test_training_file_with_overrides(tmp_path, capsys):
    train_file = tmp_path / "train.yaml"
    train_file.write_text(
        f"model:\n  config: {TINY_CONFIG}\n  n_times: 3\n  mode: full\n  loss_weights: all\n"
        "data:\n  name: digits\noptimizer:\n  name: sgd\n  lr: 0.05\n  schedule: warmup_cosine\n  warmup_epochs: 0.5\n"
        f"trainer:\n  epochs: 5\n  out: {tmp_path / 'from_file'}\n"
    )

    code = train_cli(str(train_file), "--epochs", "1", "--out", str(tmp_path / "run"), *QUICK)
    capsys.readouterr()

    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert code == 0
    assert not (tmp_path / "from_file").exists()
    assert summary["settings"]["trainer"]["epochs"] == 1
    assert summary["settings"]["model"]["mode"] == "full"
    assert summary["settings"]["optimizer"]["name"] == "sgd"
    assert len(summary["test"]["accuracy_by_step"]) == 3


def test_unknown_dataset_lists_known_ones(tmp_path, capsys):
    code = train_cli(str(TINY_CONFIG), "--data", "cifar-100", "--out", str(tmp_path / "run"), *QUICK)
    error = capsys.readouterr().err

    assert code == 1
    assert "unknown dataset 'cifar-100'" in error
    assert "digits" in error
    assert "mnist" in error
    assert not (tmp_path / "run").exists()


def test_empty_image_folder_is_named(tmp_path, capsys):
    folder = tmp_path / "images"
    folder.mkdir()

    code = train_cli(str(TINY_CONFIG), "--data", str(folder), "--out", str(tmp_path / "run"), *QUICK)
    error = capsys.readouterr().err

    assert code == 1
    assert f"image folder {folder} has no class subfolders" in error


def test_channel_mismatch_fails_before_training(tmp_path, capsys):
    train_file = tmp_path / "train.yaml"
    train_file.write_text(f"model:\n  config: {TINY_CONFIG}\n  input_shape: [3, 8, 8]\ndata: digits\n")

    code = train_cli(str(train_file), "--out", str(tmp_path / "run"), *QUICK)
    error = capsys.readouterr().err

    assert code == 1
    assert "'digits' has 1 channel(s) per image but the model's input_shape [3, 8, 8] expects 3" in error
    assert error.count("error:") == 1
    assert not (tmp_path / "run").exists()


def test_non_finite_loss_names_step_and_lr(tmp_path, capsys):
    code = train_cli(str(TINY_CONFIG), "--lr", "1e30", "--optimizer", "sgd", "--out", str(tmp_path / "run"), *QUICK)
    error = capsys.readouterr().err

    assert code == 1
    assert "(not finite) at epoch 0, global step" in error
    assert "lower the learning rate" in error


def test_unknown_training_file_setting_is_named(tmp_path, capsys):
    train_file = tmp_path / "train.yaml"
    train_file.write_text(f"model:\n  config: {TINY_CONFIG}\noptimizer:\n  learning_rate: 0.1\n")

    code = train_cli(str(train_file), *QUICK)
    error = capsys.readouterr().err

    assert code == 1
    assert "optimizer.learning_rate: unknown setting" in error


def test_resume_missing_checkpoint_is_named(tmp_path, capsys):
    out = tmp_path / "run"

    code = train_cli(str(TINY_CONFIG), "--resume", "--out", str(out), *QUICK)
    error = capsys.readouterr().err

    assert code == 1
    assert f"checkpoint {out / 'checkpoints' / 'last.ckpt'} not found" in error


@pytest.mark.parametrize("content", [None, b"", b"\x00garbage"])
def test_evaluate_bad_checkpoint_is_named(tmp_path, capsys, content):
    checkpoint = tmp_path / "model.ckpt"
    if content is not None:
        checkpoint.write_bytes(content)

    code = main(["evaluate", str(checkpoint), "--data", "digits"])
    error = capsys.readouterr().err

    assert code == 1
    assert f"checkpoint {checkpoint}" in error
    assert ("not found" if content is None else "corrupt") in error
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if content is None else ["model.ckpt"])


def test_evaluate_foreign_checkpoint_is_named(tmp_path, capsys):
    checkpoint = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, checkpoint)

    code = main(["evaluate", str(checkpoint)])
    error = capsys.readouterr().err

    assert code == 1
    assert f"checkpoint {checkpoint} was not written by tnn train" in error


def test_importing_core_and_cli_does_not_import_lightning():
    script = (
        "import sys, tnn_core, tnn_core.training, tnn_core.training.settings, tnn_core.training.datasets\n"
        "from tnn_core.cli.main import build_parser\n"
        "build_parser()\n"
        "assert 'pytorch_lightning' not in sys.modules, 'lightning imported'\n"
    )
    completed = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True, text=True)

    assert completed.returncode == 0, completed.stderr
