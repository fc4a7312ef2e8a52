"""The LightningModule, readout, loss weights and schedules of tnn_core.training on a real TemporalGraph."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

pl = pytest.importorskip("pytorch_lightning")

from tnn_core.temporal_graph import TemporalGraph  # noqa: E402
from tnn_core.training.datamodule import TNNDataModule  # noqa: E402
from tnn_core.training.errors import NonFiniteLossError, TrainingError  # noqa: E402
from tnn_core.training.module import TNNLightningModule  # noqa: E402
from tnn_core.training.optim import lr_factor  # noqa: E402
from tnn_core.training.readout import readout_logits, resolve_loss_weights, weighted_step_loss  # noqa: E402
from tnn_core.training.settings import DataSettings, OptimizerSettings  # noqa: E402

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "digits_tiny.json"


def tiny_module(lr: float = 0.01, mode: str = "biological", loss_weights="last") -> TNNLightningModule:
    torch.manual_seed(0)
    graph = TemporalGraph(str(TINY_CONFIG))
    return TNNLightningModule(
        graph, num_classes=10, n_times=4, mode=mode, loss_weights=loss_weights, optimizer=OptimizerSettings(lr=lr)
    )


def quiet_trainer(**kwargs) -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, **kwargs,
    )


def test_readout_pools_spatial_outputs():
    outputs = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).reshape(2, 3, 4, 2, 2)

    logits = readout_logits(outputs)

    assert logits.shape == (2, 3, 4)
    assert torch.allclose(logits, outputs.mean(dim=(-2, -1)))


def test_readout_flattens_features_and_rejects_last_step_only():
    assert readout_logits(torch.zeros(2, 3, 4, 5)).shape == (2, 3, 20)
    with pytest.raises(TrainingError, match="return_all=True"):
        readout_logits(torch.zeros(2, 10))


def test_loss_weights_forms():
    assert resolve_loss_weights("last", 3).tolist() == [0.0, 0.0, 1.0]
    assert torch.allclose(resolve_loss_weights("all", 4), torch.full((4,), 0.25))
    assert resolve_loss_weights([0, 1, 3], 3).tolist() == [0.0, 0.25, 0.75]
    with pytest.raises(TrainingError, match="2 entries but the model is unrolled for 3"):
        resolve_loss_weights([1, 1], 3)


def test_weighted_loss_matches_cross_entropy_of_chosen_steps():
    logits = torch.randn(5, 3, 4)
    targets = torch.tensor([0, 1, 2, 3, 0])
    weights = resolve_loss_weights([0, 1, 1], 3)

    expected = 0.5 * torch.nn.functional.cross_entropy(logits[:, 1], targets) + 0.5 * torch.nn.functional.cross_entropy(logits[:, 2], targets)

    assert torch.allclose(weighted_step_loss(logits, targets, weights), expected)


def test_schedules_warmup_cosine_and_step():
    warmup_cosine = OptimizerSettings(lr=1.0, schedule="warmup_cosine", warmup_epochs=1, min_lr=0.1)
    step = OptimizerSettings(lr=1.0, schedule="step", step_size=2, gamma=0.5)

    assert lr_factor(0, warmup_cosine, total_steps=40, steps_per_epoch=10) == pytest.approx(0.1)
    assert lr_factor(9, warmup_cosine, total_steps=40, steps_per_epoch=10) == pytest.approx(1.0)
    assert lr_factor(10, warmup_cosine, total_steps=40, steps_per_epoch=10) == pytest.approx(1.0)
    assert lr_factor(25, warmup_cosine, total_steps=40, steps_per_epoch=10) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(39, warmup_cosine, total_steps=40, steps_per_epoch=10) >= 0.1
    assert lr_factor(19, step, total_steps=60, steps_per_epoch=10) == 1.0
    assert lr_factor(20, step, total_steps=60, steps_per_epoch=10) == 0.5
    assert lr_factor(45, step, total_steps=60, steps_per_epoch=10) == 0.25


@pytest.mark.parametrize("mode", ["biological", "full"])
def test_forward_returns_logits_per_step(mode):
    module = tiny_module(mode=mode)

    logits = module(torch.rand(3, 4, 1, 8, 8))

    assert logits.shape == (3, 4, 10)


def test_class_count_mismatch_names_output_channels():
    graph = TemporalGraph(str(TINY_CONFIG))
    module = TNNLightningModule(graph, num_classes=3, n_times=4)

    with pytest.raises(TrainingError, match="10 outputs but the data has 3 classes; set out_channels"):
        module(torch.rand(2, 4, 1, 8, 8))


def test_full_mode_needs_full_unroll():
    class ForwardOnly(torch.nn.Module):
        def forward(self, x, n_times=None, return_all=False):
            return x.flatten(2)

    with pytest.raises(TrainingError, match="no full_unroll method"):
        TNNLightningModule(ForwardOnly(), num_classes=2, n_times=2, mode="full")


def test_few_steps_lower_the_loss():
    datamodule = TNNDataModule(DataSettings(name="digits", batch_size=32, max_samples=200), input_shape=(1, 8, 8), n_times=4)
    datamodule.setup()
    module = tiny_module(lr=0.01, loss_weights="all")
    x, y = datamodule.collate([datamodule.splits["train"][i] for i in range(len(datamodule.splits["train"]))])

    def training_loss() -> float:
        with torch.no_grad():
            return float(weighted_step_loss(module(x), y, module.step_weights))

    before = training_loss()
    quiet_trainer(max_steps=30).fit(module, train_dataloaders=datamodule.train_dataloader())
    after = training_loss()

    assert after < before - 0.1


def test_non_finite_loss_stops_with_step_and_lr():
    datamodule = TNNDataModule(DataSettings(name="digits", batch_size=16, max_samples=60), input_shape=(1, 8, 8), n_times=4)
    datamodule.setup()
    module = tiny_module(lr=0.5)
    with torch.no_grad():
        module.model.nodes["readout"].post_memory.lin.weight.fill_(float("nan"))

    with pytest.raises(NonFiniteLossError) as info:
        quiet_trainer(max_steps=3).fit(module, train_dataloaders=datamodule.train_dataloader())

    message = str(info.value)
    assert "global step 0" in message
    assert "lower the learning rate (now 0.5" in message
    assert "--lr 0.05" in message
