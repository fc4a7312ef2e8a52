"""Resuming a tnn train run: epoch, global step and optimizer state continue from last.ckpt."""

from __future__ import annotations

import copy
import csv
from pathlib import Path

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

from tnn_core.training.checkpoint import last_checkpoint_path, read_checkpoint  # noqa: E402
from tnn_core.training.errors import CheckpointError, TrainingError  # noqa: E402
from tnn_core.training.runner import train  # noqa: E402
from tnn_core.training.settings import TrainSettings  # noqa: E402

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits_tiny.json"


def tiny_settings(out: Path, epochs: int) -> TrainSettings:
    return TrainSettings.from_dict(
        {
            "model": {"config": str(TINY_CONFIG)},
            "data": {"name": "digits", "max_samples": 160, "batch_size": 32},
            "optimizer": {"name": "adamw", "lr": 0.01, "schedule": "cosine"},
            "trainer": {"epochs": epochs, "out": str(out), "progress_bar": False, "threads": 2, "accelerator": "cpu"},
        }
    )


class StartRecorder(pl.Callback):
    """Record where training starts: epoch, global step and a copy of the optimizer state."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epoch = trainer.current_epoch
        self.global_step = trainer.global_step
        self.optimizer_state = copy.deepcopy(trainer.optimizers[0].state_dict())
        self.lr = trainer.optimizers[0].param_groups[0]["lr"]


def test_resume_continues_epoch_and_optimizer_state(tmp_path):
    out = tmp_path / "run"
    train(tiny_settings(out, epochs=1))
    saved = read_checkpoint(last_checkpoint_path(out))
    steps_per_epoch = saved["global_step"]

    recorder = StartRecorder()
    result = train(tiny_settings(out, epochs=2), resume=True, extra_callbacks=[recorder])
    final = read_checkpoint(last_checkpoint_path(out))

    assert saved["epoch"] == 0
    assert steps_per_epoch == 4  # 112 training samples in batches of 32
    assert recorder.epoch == 1
    assert recorder.global_step == steps_per_epoch
    assert recorder.lr == pytest.approx(saved["optimizer_states"][0]["param_groups"][0]["lr"])
    saved_state = saved["optimizer_states"][0]["state"]
    resumed_state = recorder.optimizer_state["state"]
    assert saved_state.keys() == resumed_state.keys()
    for key in saved_state:
        assert torch.equal(saved_state[key]["exp_avg"], resumed_state[key]["exp_avg"])
        assert torch.equal(saved_state[key]["exp_avg_sq"], resumed_state[key]["exp_avg_sq"])
    assert final["global_step"] == 2 * steps_per_epoch
    with open(out / "metrics.csv", newline="") as handle:
        validated_epochs = {row["epoch"] for row in csv.DictReader(handle) if row["val/acc"]}
    assert validated_epochs == {"0", "1"}
    assert result.evaluation is not None


def test_resume_without_checkpoint_names_file(tmp_path):
    out = tmp_path / "run"

    with pytest.raises(CheckpointError) as info:
        train(tiny_settings(out, epochs=1), resume=True)

    assert str(out / "checkpoints" / "last.ckpt") in str(info.value)
    assert "not found" in str(info.value)
    assert not out.exists()


def test_resume_from_corrupt_checkpoint_overwrites_nothing(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"truncated checkpoint")
    (out / "metrics.csv").write_text("epoch,step\n0,1\n")
    before = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.rglob("*") if path.is_file()}

    with pytest.raises(CheckpointError) as info:
        train(tiny_settings(out, epochs=1), resume=True)

    after = {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in out.rglob("*") if path.is_file()}
    assert str(out / "checkpoints" / "last.ckpt") in str(info.value)
    assert "corrupt" in str(info.value)
    assert after == before


def test_new_run_rejects_folder_with_checkpoints(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "last.ckpt").write_bytes(b"an earlier run")

    with pytest.raises(TrainingError, match="already has checkpoints; pass --resume") as info:
        train(tiny_settings(out, epochs=1))

    assert str(out) in str(info.value)
    assert (out / "checkpoints" / "last.ckpt").read_bytes() == b"an earlier run"
