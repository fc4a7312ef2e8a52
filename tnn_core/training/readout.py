"""Readout of a TNN's output into class logits, and the loss over time steps."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .errors import TrainingError

__all__ = ["readout_logits", "resolve_loss_weights", "weighted_step_loss"]


def readout_logits(outputs: torch.Tensor) -> torch.Tensor:
    """Turn the output node's outputs for all steps into logits ``(batch, time, classes)``.

    Spatial outputs ``(batch, time, channels, height, width)`` are averaged
    over height and width; any other trailing dimensions are flattened.
    """
    if not isinstance(outputs, torch.Tensor):
        raise TrainingError(
            f"the model returned a {type(outputs).__name__}; training needs one tensor "
            f"(batch, time, ...) from forward(x, n_times=..., return_all=True)"
        )
    if outputs.dim() < 3:
        raise TrainingError(
            f"the model returned shape {tuple(outputs.shape)}; training needs (batch, time, features) or "
            f"(batch, time, channels, height, width) from forward(x, n_times=..., return_all=True)"
        )

    if outputs.dim() == 5:
        outputs = outputs.mean(dim=(-2, -1))
    return outputs.flatten(start_dim=2)


def resolve_loss_weights(loss_weights: str | Sequence[float], n_times: int) -> torch.Tensor:
    """Return per-step loss weights ``(time,)`` that sum to 1.

    ``"last"`` puts all weight on the last step, ``"all"`` spreads it evenly,
    and a list gives one non-negative weight per step (normalized here).
    """
    if loss_weights == "last":
        weights = torch.zeros(n_times)
        weights[-1] = 1.0
        return weights
    if loss_weights == "all":
        return torch.full((n_times,), 1.0 / n_times)

    weights = torch.as_tensor(list(loss_weights), dtype=torch.float32)
    if weights.numel() != n_times:
        raise TrainingError(
            f"loss_weights has {weights.numel()} entries but the model is unrolled for {n_times} time steps; "
            f"give one weight per step, or 'last' or 'all'"
        )
    return weights / weights.sum()


def weighted_step_loss(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Return the cross-entropy of logits ``(batch, time, classes)`` against ``targets``, weighted by step."""
    total = logits.new_zeros(())
    for step in torch.nonzero(weights).flatten().tolist():
        total = total + weights[step] * F.cross_entropy(logits[:, step], targets)
    return total
