"""Optimizers (SGD, AdamW) and learning-rate schedules for training.

Schedules are stepped once per optimizer step, so warm-up and cosine decay
are smooth even for runs of a few epochs. Lengths given in epochs are
converted with the number of optimizer steps per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from .settings import OptimizerSettings

__all__ = ["OPTIMIZERS", "SCHEDULES", "build_optimizer", "build_scheduler", "lr_factor"]

OPTIMIZERS = ("sgd", "adamw")

#: ``none``: constant; ``step``: multiply by ``gamma`` every ``step_size``
#: epochs; ``cosine``: cosine decay from ``lr`` to ``min_lr`` over the run;
#: ``warmup``: linear warm-up over ``warmup_epochs``, then constant;
#: ``warmup_cosine``: linear warm-up, then cosine decay.
SCHEDULES = ("none", "step", "cosine", "warmup", "warmup_cosine")


def build_optimizer(parameters: Iterable[torch.nn.Parameter], settings: OptimizerSettings) -> torch.optim.Optimizer:
    """Create the optimizer that ``settings.name`` names, with its weight decay."""
    if settings.name == "sgd":
        return torch.optim.SGD(
            parameters,
            lr=settings.lr,
            momentum=settings.momentum,
            nesterov=settings.nesterov and settings.momentum > 0,
            weight_decay=settings.weight_decay,
        )
    return torch.optim.AdamW(parameters, lr=settings.lr, weight_decay=settings.weight_decay)


def lr_factor(step: int, settings: OptimizerSettings, total_steps: int, steps_per_epoch: float) -> float:
    """Return the factor that multiplies ``settings.lr`` at optimizer step ``step`` (0-based)."""
    name = settings.schedule
    if name == "none":
        return 1.0

    if name == "step":
        epoch = int(step // max(steps_per_epoch, 1e-12))
        return settings.gamma ** (epoch // settings.step_size)

    warmup_steps = round(settings.warmup_epochs * steps_per_epoch) if name.startswith("warmup") else 0
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    if name == "warmup":
        return 1.0

    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    floor = settings.min_lr / settings.lr
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, settings: OptimizerSettings, total_steps: int, steps_per_epoch: float
) -> torch.optim.lr_scheduler.LambdaLR | None:
    """Create the per-step schedule of ``settings.schedule``, or ``None`` for a constant learning rate."""
    if settings.schedule == "none":
        return None
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, settings, total_steps, steps_per_epoch)
    )
