"""LightningModule that trains any TNN model for image-movie classification.

The wrapped model is any ``nn.Module`` whose ``forward(x, n_times=...,
return_all=True)`` returns ``(batch, time, ...)`` (a ``TemporalGraph``, or an
EAD model); with ``mode="full"`` its ``full_unroll`` is called instead.
"""

from __future__ import annotations

import logging
import math
import platform
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from .errors import NonFiniteLossError, TrainingError
from .optim import build_optimizer, build_scheduler
from .readout import readout_logits, resolve_loss_weights, weighted_step_loss
from .settings import OptimizerSettings

logger = logging.getLogger(__name__)

__all__ = ["TNNLightningModule", "plugin_records", "software_versions"]


def _accuracy(num_classes: int, top_k: int = 1, sync_on_compute: bool = True) -> MulticlassAccuracy:
    # micro averaging is the plain fraction of correct samples; top_k cannot exceed the class count
    return MulticlassAccuracy(
        num_classes=num_classes, top_k=min(top_k, num_classes), average="micro", sync_on_compute=sync_on_compute
    )


class TNNLightningModule(pl.LightningModule):
    """Train and evaluate a TNN on batches of movies ``(batch, time, channels, height, width)`` and labels ``(batch,)``.

    Logs ``train/loss``, ``train/acc``, and for validation and test
    ``{stage}/loss``, ``{stage}/acc`` (top-1 at the last step),
    ``{stage}/acc_top5`` and ``{stage}/acc_t1`` ... ``{stage}/acc_tT``
    (top-1 at each time step).
    """

    def __init__(
        self,
        model: nn.Module,
        num_classes: int,
        n_times: int,
        mode: str = "biological",
        loss_weights: str | list[float] = "last",
        optimizer: OptimizerSettings | dict[str, Any] | None = None,
        model_config: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        if mode not in ("biological", "full"):
            raise TrainingError(f"unroll mode {mode!r} is not valid; use 'biological' or 'full'")
        if mode == "full" and not callable(getattr(model, "full_unroll", None)):
            raise TrainingError(f"{type(model).__name__} has no full_unroll method; use mode 'biological'")

        if isinstance(optimizer, dict):
            optimizer = OptimizerSettings(**optimizer)
        self.model = model
        self.num_classes = num_classes
        self.n_times = n_times
        self.mode = mode
        self.optimizer_settings = optimizer or OptimizerSettings()
        self.register_buffer("step_weights", resolve_loss_weights(loss_weights, n_times), persistent=False)

        # model_config and settings let `tnn evaluate` rebuild the model from the checkpoint alone
        self.save_hyperparameters(
            {
                "num_classes": num_classes,
                "n_times": n_times,
                "mode": mode,
                "loss_weights": loss_weights,
                "optimizer": vars(self.optimizer_settings),
                "model_config": model_config,
                "settings": settings,
            }
        )

        self.train_acc = _accuracy(num_classes)
        for stage in ("val", "test"):
            setattr(self, f"{stage}_acc", _accuracy(num_classes))
            setattr(self, f"{stage}_acc_top5", _accuracy(num_classes, top_k=5))
            setattr(self, f"{stage}_acc_by_step", nn.ModuleList(_accuracy(num_classes) for _ in range(n_times)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Unroll the model on ``x`` ``(batch, time, channels, height, width)`` and return logits ``(batch, time, classes)``."""
        if self.mode == "full":
            outputs = self.model.full_unroll(x, n_times=self.n_times, return_all=True)
        else:
            outputs = self.model(x, n_times=self.n_times, return_all=True)
        logits = readout_logits(outputs)

        if logits.shape[1] != self.n_times:
            raise TrainingError(
                f"the model returned {logits.shape[1]} time steps for n_times={self.n_times}; "
                f"it must return every step with return_all=True"
            )
        if logits.shape[2] != self.num_classes:
            raise TrainingError(
                f"the model's readout has {logits.shape[2]} outputs but the data has {self.num_classes} classes; "
                f"set out_channels of the output node to {self.num_classes}"
            )
        return logits

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = weighted_step_loss(logits, y, self.step_weights)
        self._stop_on_non_finite(loss, batch_idx)

        self.train_acc(logits[:, -1], y)
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=y.shape[0], sync_dist=True)
        self.log("train/acc", self.train_acc, prog_bar=True, on_step=False, on_epoch=True, batch_size=y.shape[0])
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate_step("val", batch)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate_step("test", batch)

    def _evaluate_step(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor]) -> None:
        x, y = batch
        logits = self(x)
        loss = weighted_step_loss(logits, y, self.step_weights)
        batch_size = y.shape[0]

        top1 = getattr(self, f"{stage}_acc")
        top5 = getattr(self, f"{stage}_acc_top5")
        by_step = getattr(self, f"{stage}_acc_by_step")
        top1(logits[:, -1], y)
        top5(logits[:, -1], y)
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val", batch_size=batch_size, sync_dist=True)
        self.log(f"{stage}/acc", top1, prog_bar=stage == "val", batch_size=batch_size)
        self.log(f"{stage}/acc_top5", top5, batch_size=batch_size)
        for step, metric in enumerate(by_step):
            metric(logits[:, step], y)
            self.log(f"{stage}/acc_t{step + 1}", metric, batch_size=batch_size)

    def _stop_on_non_finite(self, loss: torch.Tensor, batch_idx: int) -> None:
        non_finite = not bool(torch.isfinite(loss))
        if self.trainer.world_size > 1:
            # every rank must stop together, or the others wait forever in the next all-reduce
            non_finite = self.trainer.strategy.reduce_boolean_decision(non_finite, all=False)
        if not non_finite:
            return

        lr = self.trainer.optimizers[0].param_groups[0]["lr"] if self.trainer.optimizers else self.optimizer_settings.lr
        raise NonFiniteLossError(
            f"the training loss is {loss.item()} (not finite) at epoch {self.current_epoch}, "
            f"global step {self.global_step}, batch {batch_idx}; lower the learning rate "
            f"(now {lr:g}, try --lr {lr / 10:g}) or clip gradients with --gradient-clip 1.0"
        )

    def configure_optimizers(self) -> Any:
        optimizer = build_optimizer(self.parameters(), self.optimizer_settings)
        total_steps = int(self.trainer.estimated_stepping_batches)
        if not math.isfinite(total_steps) or total_steps < 1:
            total_steps = 1
        steps_per_epoch = total_steps / max(1, self.trainer.max_epochs or 1)

        scheduler = build_scheduler(optimizer, self.optimizer_settings, total_steps, steps_per_epoch)
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["tnn"] = {"plugins": plugin_records(), "versions": software_versions()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = {(p["kind"], p["name"]): p for p in checkpoint.get("tnn", {}).get("plugins", [])}
        installed = {(p["kind"], p["name"]): p for p in plugin_records()}
        for key, plugin in saved.items():
            now = installed.get(key)
            if now is None:
                logger.warning("checkpoint was saved with %s %r from %s %s, which is not installed now",
                               plugin["kind"], plugin["name"], plugin["distribution"], plugin["version"])
            elif (now["distribution"], now["version"]) != (plugin["distribution"], plugin["version"]):
                logger.info("%s %r: checkpoint used %s %s, installed is %s %s", plugin["kind"], plugin["name"],
                            plugin["distribution"], plugin["version"], now["distribution"], now["version"])


def plugin_records() -> list[dict[str, str]]:
    """Return every registered component as ``{kind, name, distribution, version}``."""
    from ..registry import list_components

    return [
        {"kind": e.kind, "name": e.name, "distribution": e.distribution, "version": e.version}
        for e in list_components()
    ]


def software_versions() -> dict[str, str]:
    """Return the versions of Python, torch, Lightning, torchmetrics and pytorch-tnn."""
    import importlib.metadata

    import torchmetrics

    try:
        tnn_version = importlib.metadata.version("pytorch-tnn")
    except importlib.metadata.PackageNotFoundError:
        tnn_version = "unknown"
    return {
        "python": platform.python_version(),
        "torch": str(torch.__version__),
        "pytorch_lightning": str(pl.__version__),
        "torchmetrics": str(torchmetrics.__version__),
        "pytorch_tnn": tnn_version,
    }
