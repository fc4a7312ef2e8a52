"""Evaluate a trained module on a data loader: accuracy overall and per time step."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch.utils.data import DataLoader

from .module import TNNLightningModule, _accuracy
from .readout import weighted_step_loss

__all__ = ["Evaluation", "evaluate_module", "format_evaluation"]


@dataclass
class Evaluation:
    """Test-set results; ``accuracy_by_step[t]`` is the top-1 accuracy at time step ``t + 1``."""

    accuracy: float
    accuracy_top5: float
    accuracy_by_step: list[float]
    loss: float
    samples: int

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def evaluate_module(module: TNNLightningModule, loader: DataLoader, device: torch.device | str = "cpu") -> Evaluation:
    """Run ``module`` in eval mode over ``loader`` in this process only (no cross-process reduction)."""
    num_classes, n_times = module.num_classes, module.n_times
    top1 = _accuracy(num_classes, sync_on_compute=False).to(device)
    top5 = _accuracy(num_classes, top_k=5, sync_on_compute=False).to(device)
    by_step = [_accuracy(num_classes, sync_on_compute=False).to(device) for _ in range(n_times)]

    was_training = module.training
    module.eval()
    module.to(device)
    loss_sum, samples = 0.0, 0
    for x, y in loader:
        x, y = x.to(device), y.to(device)
        logits = module(x)
        loss_sum += float(weighted_step_loss(logits, y, module.step_weights)) * y.shape[0]
        samples += y.shape[0]

        top1.update(logits[:, -1], y)
        top5.update(logits[:, -1], y)
        for step, metric in enumerate(by_step):
            metric.update(logits[:, step], y)
    module.train(was_training)

    return Evaluation(
        accuracy=float(top1.compute()),
        accuracy_top5=float(top5.compute()),
        accuracy_by_step=[float(metric.compute()) for metric in by_step],
        loss=loss_sum / max(1, samples),
        samples=samples,
    )


def format_evaluation(evaluation: Evaluation, title: str = "test") -> str:
    """Return a few lines with the top-1/top-5 accuracy at the last step and the accuracy at every step."""
    lines = [
        f"{title}: {evaluation.samples} samples, loss {evaluation.loss:.4f}, "
        f"top-1 accuracy {evaluation.accuracy:.4f}, top-5 accuracy {evaluation.accuracy_top5:.4f} (last step)",
        "accuracy by time step:",
    ]
    lines.extend(f"  t={step + 1}: {accuracy:.4f}" for step, accuracy in enumerate(evaluation.accuracy_by_step))
    return "\n".join(lines)
