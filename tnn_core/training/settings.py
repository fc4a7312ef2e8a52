"""Settings of a training run and the training file (YAML) that sets them.

A training file has four sections; every key is optional except
``model.config``::

    model:
      config: mnist_convrnn.json   # graph config path (relative to this file) or inline dict
      n_times: 6                   # time steps to unroll (default: the config's num_timesteps)
      mode: biological             # biological (graph forward) or full (full_unroll)
      loss_weights: last           # last, all, or one weight per time step
    data:
      name: mnist                  # dataset name, image folder or .npz/.pt file
      batch_size: 64
    optimizer:
      name: adamw                  # adamw or sgd
      lr: 0.003
      schedule: warmup_cosine      # none, step, cosine, warmup, warmup_cosine
    trainer:
      epochs: 10
      out: runs/mnist_convrnn

Command-line options of ``tnn train`` override the file.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, Problem

__all__ = [
    "ModelSettings",
    "DataSettings",
    "OptimizerSettings",
    "TrainerSettings",
    "TrainSettings",
    "load_train_file",
    "is_train_file",
    "default_threads",
]

MODES = ("biological", "full")


@dataclass
class ModelSettings:
    """The model to train and how to unroll it."""

    config: str | dict[str, Any] = ""
    n_times: int | None = None
    mode: str = "biological"
    loss_weights: str | list[float] = "last"
    input_shape: list[int] | None = None


@dataclass
class DataSettings:
    """The dataset, its split and how images become movies.

    ``image_off`` is the number of time steps an image is shown before blank
    frames of value ``blank`` follow (default: every step shows the image).
    ``max_samples`` keeps only that many samples (after shuffling) for
    quick runs.
    """

    name: str = "digits"
    batch_size: int = 64
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    split_seed: int = 0
    image_off: int | None = None
    blank: float = 0.5
    max_samples: int | None = None
    num_workers: int = 0


@dataclass
class OptimizerSettings:
    """The optimizer and its learning-rate schedule (lengths in epochs)."""

    name: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "none"
    warmup_epochs: float = 0.0
    step_size: int = 10
    gamma: float = 0.1
    min_lr: float = 0.0


@dataclass
class TrainerSettings:
    """Run length, output folder, devices and the other Lightning Trainer options.

    ``limit_*_batches`` takes a fraction of the batches (float) or a batch
    count (int). ``threads`` is the torch thread count per process.
    """

    epochs: int = 10
    seed: int = 0
    out: str | None = None
    devices: int = 1
    accelerator: str = "auto"
    strategy: str = "auto"
    threads: int | None = None
    gradient_clip: float | None = None
    limit_train_batches: float | int | None = None
    limit_val_batches: float | int | None = None
    limit_test_batches: float | int | None = None
    progress_bar: bool = True


@dataclass
class TrainSettings:
    """Every setting of one training run."""

    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataSettings = field(default_factory=DataSettings)
    optimizer: OptimizerSettings = field(default_factory=OptimizerSettings)
    trainer: TrainerSettings = field(default_factory=TrainerSettings)
    source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as plain data (for checkpoints and ``summary.json``)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> TrainSettings:
        """Build settings from a ``to_dict`` result or a parsed training file; raises ``ConfigError``."""
        problems: list[Problem] = []
        sections = {"model": ModelSettings, "data": DataSettings, "optimizer": OptimizerSettings, "trainer": TrainerSettings}
        unknown = sorted(set(data) - set(sections) - {"source"})
        if unknown:
            problems.append(Problem("", f"unknown section(s) {', '.join(unknown)}; valid sections: {', '.join(sections)}"))

        values: dict[str, Any] = {}
        for section, kind in sections.items():
            content = data.get(section) or {}
            if section == "model" and (isinstance(content, str) or isinstance(content, dict) and "nodes" in content):
                content = {"config": content}
            if section == "data" and isinstance(content, str):
                content = {"name": content}
            if not isinstance(content, dict):
                problems.append(Problem(section, f"expected a mapping of settings, got {type(content).__name__}"))
                content = {}
            valid = [f.name for f in dataclasses.fields(kind)]
            for key in sorted(set(content) - set(valid)):
                problems.append(Problem(f"{section}.{key}", f"unknown setting; valid settings: {', '.join(valid)}"))
            values[section] = kind(**{k: v for k, v in content.items() if k in valid})
        if problems:
            raise ConfigError(problems, source=source)

        settings = cls(**values, source=source if source is not None else data.get("source"))
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every value; raises one ``ConfigError`` that lists all problems."""
        problems: list[Problem] = []

        def check(where: str, ok: bool, message: str) -> None:
            if not ok:
                problems.append(Problem(where, message))

        model, data, optimizer, trainer = self.model, self.data, self.optimizer, self.trainer
        check("model.config", isinstance(model.config, dict) or bool(model.config) and isinstance(model.config, str),
              "set it to the path of a graph config (.json/.yaml) or an inline graph config")
        check("model.n_times", model.n_times is None or _is_int(model.n_times) and model.n_times >= 1,
              f"expected a positive integer, got {model.n_times!r}")
        check("model.mode", model.mode in MODES, f"expected one of {', '.join(MODES)}, got {model.mode!r}")
        check("model.loss_weights", _valid_loss_weights(model.loss_weights),
              f"expected 'last', 'all' or a list of non-negative numbers (one per time step), got {model.loss_weights!r}")
        check("model.input_shape", model.input_shape is None or isinstance(model.input_shape, list | tuple)
              and len(model.input_shape) == 3 and all(_is_int(v) and v >= 1 for v in model.input_shape),
              f"expected [channels, height, width] of positive integers, got {model.input_shape!r}")

        check("data.name", isinstance(data.name, str) and bool(data.name), f"expected a dataset name or path, got {data.name!r}")
        check("data.batch_size", _is_int(data.batch_size) and data.batch_size >= 1, f"expected a positive integer, got {data.batch_size!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(data, name)
            check(f"data.{name}", _is_number(value) and 0 < value < 1, f"expected a number between 0 and 1, got {value!r}")
        check("data.split_seed", _is_int(data.split_seed), f"expected an integer, got {data.split_seed!r}")
        check("data.image_off", data.image_off is None or _is_int(data.image_off) and data.image_off >= 1,
              f"expected a positive integer, got {data.image_off!r}")
        check("data.blank", _is_number(data.blank), f"expected a number, got {data.blank!r}")
        check("data.max_samples", data.max_samples is None or _is_int(data.max_samples) and data.max_samples >= 3,
              f"expected an integer of at least 3, got {data.max_samples!r}")
        check("data.num_workers", _is_int(data.num_workers) and data.num_workers >= 0, f"expected a non-negative integer, got {data.num_workers!r}")

        from .optim import OPTIMIZERS, SCHEDULES

        check("optimizer.name", optimizer.name in OPTIMIZERS, f"expected one of {', '.join(OPTIMIZERS)}, got {optimizer.name!r}")
        check("optimizer.schedule", optimizer.schedule in SCHEDULES, f"expected one of {', '.join(SCHEDULES)}, got {optimizer.schedule!r}")
        check("optimizer.lr", _is_number(optimizer.lr) and optimizer.lr > 0, f"expected a positive number, got {optimizer.lr!r}")
        for name in ("weight_decay", "momentum", "warmup_epochs", "min_lr"):
            value = getattr(optimizer, name)
            check(f"optimizer.{name}", _is_number(value) and value >= 0, f"expected a non-negative number, got {value!r}")
        check("optimizer.step_size", _is_int(optimizer.step_size) and optimizer.step_size >= 1, f"expected a positive integer, got {optimizer.step_size!r}")
        check("optimizer.gamma", _is_number(optimizer.gamma) and optimizer.gamma > 0, f"expected a positive number, got {optimizer.gamma!r}")
        check("optimizer.nesterov", isinstance(optimizer.nesterov, bool), f"expected true or false, got {optimizer.nesterov!r}")
        if optimizer.schedule.startswith("warmup") if isinstance(optimizer.schedule, str) else False:
            check("optimizer.warmup_epochs", _is_number(optimizer.warmup_epochs) and optimizer.warmup_epochs > 0,
                  f"schedule {optimizer.schedule!r} needs warmup_epochs > 0, got {optimizer.warmup_epochs!r}")

        check("trainer.epochs", _is_int(trainer.epochs) and trainer.epochs >= 1, f"expected a positive integer, got {trainer.epochs!r}")
        check("trainer.seed", _is_int(trainer.seed), f"expected an integer, got {trainer.seed!r}")
        check("trainer.devices", _is_int(trainer.devices) and trainer.devices >= 1, f"expected a positive integer, got {trainer.devices!r}")
        check("trainer.threads", trainer.threads is None or _is_int(trainer.threads) and trainer.threads >= 1,
              f"expected a positive integer, got {trainer.threads!r}")
        check("trainer.gradient_clip", trainer.gradient_clip is None or _is_number(trainer.gradient_clip) and trainer.gradient_clip > 0,
              f"expected a positive number, got {trainer.gradient_clip!r}")
        for name in ("limit_train_batches", "limit_val_batches", "limit_test_batches"):
            value = getattr(trainer, name)
            check(f"trainer.{name}", value is None or _is_int(value) and value >= 1 or _is_number(value) and 0 < value <= 1,
                  f"expected a batch count (integer >= 1) or a fraction in (0, 1], got {value!r}")
        for name in ("accelerator", "strategy"):
            value = getattr(trainer, name)
            check(f"trainer.{name}", isinstance(value, str) and bool(value), f"expected a name, got {value!r}")
        check("trainer.progress_bar", isinstance(trainer.progress_bar, bool), f"expected true or false, got {trainer.progress_bar!r}")

        if problems:
            raise ConfigError(problems, source=self.source)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _valid_loss_weights(value: Any) -> bool:
    if value in ("last", "all"):
        return True
    return (
        isinstance(value, list | tuple)
        and len(value) > 0
        and all(_is_number(w) and w >= 0 for w in value)
        and sum(value) > 0
    )


def is_train_file(path: str | Path) -> bool:
    """Tell a training file (with a ``model`` section) from a graph config (with ``nodes``)."""
    path = Path(path)
    if path.suffix.lower() not in (".yaml", ".yml") or not path.is_file():
        return False
    content = _read_yaml(path)
    return isinstance(content, dict) and "model" in content and "nodes" not in content


def load_train_file(path: str | Path) -> TrainSettings:
    """Read a training file; a relative ``model.config`` path is taken relative to the file."""
    path = Path(path)
    content = _read_yaml(path)
    if not isinstance(content, dict):
        raise ConfigError("a training file must be a mapping with model, data, optimizer and trainer sections", source=str(path))

    settings = TrainSettings.from_dict(content, source=str(path))
    config = settings.model.config
    if isinstance(config, str) and not Path(config).is_absolute():
        settings.model.config = str(path.parent / config)
    return settings


def _read_yaml(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as handle:
            return yaml.safe_load(handle)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot parse YAML: {exc}", source=str(path)) from exc


def default_threads(processes: int = 1) -> int:
    """Return the torch thread count per process: the idle CPUs this process may use, shared by ``processes``.

    CPUs count as busy by the 1-minute load average, because OpenMP threads
    that compete with other processes for a core wait on each other. On a
    2-core machine with a load average of 5, one torch thread ran a training
    step of configs/mnist_convrnn.json about 4x faster than two.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS and Windows
        cpus = os.cpu_count() or 1
    try:
        busy = int(os.getloadavg()[0])
    except (AttributeError, OSError):  # no load average on Windows
        busy = 0
    idle = max(1, cpus - busy)
    return max(1, idle // max(1, processes))
