"""Lightning DDP on two CPU processes (gloo): after a few steps both ranks hold identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed

pl = pytest.importorskip("pytorch_lightning")

from tnn_core.training.runner import train  # noqa: E402
from tnn_core.training.settings import TrainSettings  # noqa: E402

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits_tiny.json"


class SaveRankWeights(pl.Callback):
    """Save each rank's model weights and step count at the end of training (runs in the spawned processes)."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        state = {key: value.detach().cpu().clone() for key, value in pl_module.model.state_dict().items()}
        backend = torch.distributed.get_backend() if torch.distributed.is_initialized() else None
        torch.save(
            {"state": state, "global_step": trainer.global_step, "world_size": trainer.world_size, "backend": backend},
            Path(self.folder) / f"rank{trainer.global_rank}.pt",
        )


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_ddp_two_cpu_processes_keep_weights_identical(tmp_path):
    settings = TrainSettings.from_dict(
        {
            "model": {"config": str(TINY_CONFIG)},
            "data": {"name": "digits", "max_samples": 200, "batch_size": 16},
            "optimizer": {"name": "adamw", "lr": 0.01},
            "trainer": {
                "epochs": 1, "out": str(tmp_path / "run"), "progress_bar": False, "threads": 1,
                "accelerator": "cpu", "devices": 2, "strategy": "ddp_spawn", "limit_train_batches": 3,
            },
        }
    )

    result = train(settings, extra_callbacks=[SaveRankWeights(str(tmp_path))])

    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert rank0["world_size"] == 2
    assert rank0["backend"] == "gloo"
    assert rank0["global_step"] == rank1["global_step"] == 3
    assert rank0["state"].keys() == rank1["state"].keys()
    for key in rank0["state"]:
        assert torch.equal(rank0["state"][key], rank1["state"][key]), key
    assert result.evaluation is not None
    assert (tmp_path / "run" / "summary.json").is_file()
