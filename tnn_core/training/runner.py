"""Run a whole training or evaluation: model, data, Lightning Trainer, checkpoints and reports.

``train`` is what ``tnn train`` runs and ``evaluate_checkpoint`` what
``tnn evaluate`` runs. Both check their inputs (dataset, channels, classes,
checkpoint) before they write anything.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from torch import nn

from ..config import load_config
from ..temporal_graph import TemporalGraph
from .checkpoint import CHECKPOINT_DIR, last_checkpoint_path, read_checkpoint
from .datamodule import TNNDataModule
from .errors import CheckpointError, TrainingError
from .evaluation import Evaluation, evaluate_module
from .module import TNNLightningModule, software_versions
from .report import merge_metrics_csv, plot_accuracy_by_step, write_summary
from .settings import ModelSettings, TrainSettings, default_threads

logger = logging.getLogger(__name__)

__all__ = ["TrainResult", "EvaluateResult", "train", "evaluate_checkpoint", "build_model", "run_dir_of"]


@dataclass
class TrainResult:
    """Outputs of ``train``; ``evaluation`` is ``None`` on ranks other than 0."""

    run_dir: Path
    evaluation: Evaluation | None
    summary_path: Path | None
    best_checkpoint: Path | None
    wall_time_s: float


@dataclass
class EvaluateResult:
    """Outputs of ``evaluate_checkpoint``."""

    evaluation: Evaluation
    out_dir: Path
    summary_path: Path


def run_dir_of(settings: TrainSettings) -> Path:
    """Return the run folder: ``trainer.out``, else ``runs/<config or training file name>``."""
    if settings.trainer.out:
        return Path(settings.trainer.out)
    name_source = settings.source or (settings.model.config if isinstance(settings.model.config, str) else "model")
    return Path("runs") / Path(str(name_source)).stem


def build_model(settings: ModelSettings, config: dict[str, Any] | None = None) -> tuple[nn.Module, dict[str, Any], int]:
    """Build the ``TemporalGraph`` of ``settings`` and return ``(model, config dict, n_times)``.

    ``config`` replaces ``settings.config`` (a checkpoint stores the dict, so
    evaluation needs no config file). ``n_times`` defaults to the config's
    ``num_timesteps``.
    """
    # TODO: EAD models need their own builder here; the training module already accepts any nn.Module.
    source = config if config is not None else settings.config
    raw_config, _label = load_config(source, apply_hooks=False)
    model = TemporalGraph(source, input_shape=settings.input_shape, num_timesteps=settings.n_times)

    n_times = settings.n_times or model.num_timesteps
    if n_times is None:
        raise TrainingError(
            "the number of time steps is not set; pass --n-times, set model.n_times in the training file "
            "or num_timesteps in the model config"
        )
    return model, raw_config, n_times


def _is_launched_rank_zero() -> bool:
    # Lightning's DDP launcher starts ranks > 0 as copies of this command with these variables set
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def _set_threads(settings: TrainSettings) -> int:
    processes = settings.trainer.devices if settings.trainer.accelerator in ("cpu", "auto") else 1
    if settings.trainer.accelerator == "auto" and torch.cuda.is_available():
        processes = 1
    threads = settings.trainer.threads or default_threads(processes)
    torch.set_num_threads(threads)
    logger.info("torch threads per process: %d", threads)
    return threads


def _preflight(module: TNNLightningModule, datamodule: TNNDataModule) -> None:
    """Unroll two training samples once so shape, channel and class problems surface before training."""
    x, y = datamodule.collate([datamodule.splits["train"][i] for i in range(min(2, len(datamodule.splits["train"])))])
    was_training = module.training
    module.eval()
    with torch.no_grad():
        module(x)
    module.train(was_training)


def _loggers(run_dir: Path) -> list[Any]:
    from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

    loggers: list[Any] = [CSVLogger(save_dir=run_dir, name="logs")]
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        loggers.append(TensorBoardLogger(save_dir=run_dir, name="tensorboard"))
    return loggers


def _machine(threads: int) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next((line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cpus": os.cpu_count(), "torch_threads": threads,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _count_parameters(model: nn.Module) -> dict[str, int]:
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def train(
    settings: TrainSettings, resume: bool = False, extra_callbacks: Sequence[pl.Callback] = ()
) -> TrainResult:
    """Train, test the best checkpoint and write the run folder.

    The run folder gets ``checkpoints/`` (``last.ckpt`` and the best
    validation accuracy), ``logs/`` (Lightning's CSV logs), ``metrics.csv``,
    ``accuracy_by_step.png`` and ``summary.json``. ``resume`` continues from
    ``checkpoints/last.ckpt``. Raises ``TrainingError`` (or a subclass)
    before writing anything when the inputs are invalid.
    """
    started = time.perf_counter()
    run_dir = run_dir_of(settings)
    checkpoint_dir = run_dir / CHECKPOINT_DIR

    resume_path: Path | None = None
    if resume:
        resume_path = last_checkpoint_path(run_dir)
        read_checkpoint(resume_path)
    elif _is_launched_rank_zero() and any(checkpoint_dir.glob("*.ckpt")):
        raise TrainingError(
            f"run folder {run_dir} already has checkpoints; pass --resume to continue that run, "
            f"or choose another folder with --out"
        )

    threads = _set_threads(settings)
    torch.manual_seed(settings.trainer.seed)
    pl.seed_everything(settings.trainer.seed, workers=True, verbose=False)

    model, model_config, n_times = build_model(settings.model)
    datamodule = TNNDataModule(settings.data, model.input_shape, n_times)
    datamodule.setup()
    module = TNNLightningModule(
        model,
        num_classes=datamodule.num_classes,
        n_times=n_times,
        mode=settings.model.mode,
        loss_weights=settings.model.loss_weights,
        optimizer=settings.optimizer,
        model_config=model_config,
        settings=settings.to_dict(),
    )
    _preflight(module, datamodule)

    from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint

    checkpointing = ModelCheckpoint(
        dirpath=checkpoint_dir,
        filename="best-epoch{epoch:03d}-acc{val/acc:.4f}",
        auto_insert_metric_name=False,
        monitor="val/acc",
        mode="max",
        save_top_k=1,
        save_last=True,
    )
    trainer = pl.Trainer(
        default_root_dir=run_dir,
        max_epochs=settings.trainer.epochs,
        accelerator=settings.trainer.accelerator,
        devices=settings.trainer.devices,
        strategy=settings.trainer.strategy,
        gradient_clip_val=settings.trainer.gradient_clip,
        limit_train_batches=settings.trainer.limit_train_batches,
        limit_val_batches=settings.trainer.limit_val_batches,
        limit_test_batches=settings.trainer.limit_test_batches,
        enable_progress_bar=settings.trainer.progress_bar,
        enable_model_summary=settings.trainer.progress_bar,
        num_sanity_val_steps=0,
        log_every_n_steps=10,
        logger=_loggers(run_dir),
        callbacks=[checkpointing, LearningRateMonitor(logging_interval="epoch"), *extra_callbacks],
    )
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume_path)
    if not trainer.is_global_zero:
        return TrainResult(run_dir, None, None, None, time.perf_counter() - started)

    best = Path(checkpointing.best_model_path) if checkpointing.best_model_path else None
    if best is not None and best.is_file():
        module.load_state_dict(read_checkpoint(best)["state_dict"])
    device = next(module.parameters()).device
    evaluation = evaluate_module(module, datamodule.test_dataloader(), device=device)
    wall_time = time.perf_counter() - started

    merge_metrics_csv(run_dir / "logs", run_dir / "metrics.csv")
    title = f"{Path(str(settings.model.config)).stem if isinstance(settings.model.config, str) else 'model'} on {settings.data.name}"
    plot_accuracy_by_step(run_dir / "accuracy_by_step.png", evaluation, title)
    summary_path = write_summary(
        run_dir / "summary.json",
        evaluation,
        {
            "evaluated_checkpoint": str(best) if best else "final weights",
            "epochs_trained": trainer.current_epoch,
            "parameters": _count_parameters(module.model),
            "wall_time_s": round(wall_time, 2),
            "machine": _machine(threads),
            "versions": software_versions(),
            "settings": settings.to_dict(),
            "model_config": model_config,
        },
    )
    return TrainResult(run_dir, evaluation, summary_path, best, wall_time)


def evaluate_checkpoint(
    checkpoint_path: str | Path,
    data: str | None = None,
    out: str | Path | None = None,
    batch_size: int | None = None,
    threads: int | None = None,
) -> EvaluateResult:
    """Rebuild the model of a ``tnn train`` checkpoint and evaluate it on the test split of ``data``.

    ``data`` defaults to the dataset the model was trained on, and ``out``
    to ``evaluation/`` inside the checkpoint's run folder; that folder gets
    ``summary.json`` and ``accuracy_by_step.png``.
    """
    started = time.perf_counter()
    checkpoint_path = Path(checkpoint_path)
    checkpoint = read_checkpoint(checkpoint_path)
    hparams = checkpoint["hyper_parameters"]
    if not hparams.get("model_config") or not hparams.get("settings"):
        raise CheckpointError(
            f"checkpoint {checkpoint_path} does not store the model config and training settings; "
            f"it was not written by tnn train"
        )

    settings = TrainSettings.from_dict(hparams["settings"], source=str(checkpoint_path))
    if data is not None:
        settings.data.name = data
    if batch_size is not None:
        settings.data.batch_size = batch_size
    torch.set_num_threads(threads or default_threads())

    model, model_config, n_times = build_model(settings.model, config=hparams["model_config"])
    datamodule = TNNDataModule(settings.data, model.input_shape, n_times)
    datamodule.setup()
    if datamodule.num_classes != hparams["num_classes"]:
        raise TrainingError(
            f"dataset {settings.data.name!r} has {datamodule.num_classes} classes but the model in "
            f"{checkpoint_path} was trained for {hparams['num_classes']}; evaluate it on data with the same classes"
        )
    module = TNNLightningModule(
        model,
        num_classes=hparams["num_classes"],
        n_times=n_times,
        mode=hparams["mode"],
        loss_weights=hparams["loss_weights"],
        model_config=model_config,
        settings=settings.to_dict(),
    )
    module.load_state_dict(checkpoint["state_dict"])
    evaluation = evaluate_module(module, datamodule.test_dataloader())

    if out is None:
        parent = checkpoint_path.resolve().parent
        run_dir = parent.parent if parent.name == CHECKPOINT_DIR else parent
        out = run_dir / "evaluation"
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    plot_accuracy_by_step(out_dir / "accuracy_by_step.png", evaluation, f"{checkpoint_path.name} on {settings.data.name}")
    summary_path = write_summary(
        out_dir / "summary.json",
        evaluation,
        {
            "evaluated_checkpoint": str(checkpoint_path),
            "epochs_trained": checkpoint["epoch"],
            "parameters": _count_parameters(module.model),
            "wall_time_s": round(time.perf_counter() - started, 2),
            "machine": _machine(torch.get_num_threads()),
            "versions": software_versions(),
            "checkpoint_versions": checkpoint.get("tnn", {}).get("versions"),
            "checkpoint_plugins": checkpoint.get("tnn", {}).get("plugins"),
            "settings": settings.to_dict(),
            "model_config": model_config,
        },
    )
    return EvaluateResult(evaluation, out_dir, summary_path)
