"""Files a run folder gets after training or evaluation: summary.json, accuracy_by_step.png, metrics.csv."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

from .evaluation import Evaluation

logger = logging.getLogger(__name__)

__all__ = ["write_summary", "plot_accuracy_by_step", "merge_metrics_csv"]


def write_summary(path: Path, evaluation: Evaluation, extra: dict[str, Any]) -> Path:
    """Write ``summary.json``: the test evaluation plus ``extra`` (parameters, wall time, configuration)."""
    summary = {"test": evaluation.to_dict(), **extra}
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def plot_accuracy_by_step(path: Path, evaluation: Evaluation, title: str) -> Path:
    """Plot the test accuracy at each time step to a PNG file (matplotlib's Agg renderer, no display)."""
    from matplotlib.figure import Figure

    steps = list(range(1, len(evaluation.accuracy_by_step) + 1))
    figure = Figure(figsize=(5, 3.5), dpi=120)
    axes = figure.add_subplot()
    axes.plot(steps, evaluation.accuracy_by_step, marker="o")
    axes.set_xlabel("time step")
    axes.set_ylabel("test accuracy (top-1)")
    axes.set_xticks(steps)
    axes.set_ylim(0.0, 1.0)
    axes.grid(True, alpha=0.3)
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    return path


def merge_metrics_csv(log_root: Path, destination: Path) -> Path | None:
    """Concatenate the ``metrics.csv`` of every logger version under ``log_root`` (in version order) into ``destination``.

    A resumed run logs into a new version folder, so the merged file covers
    the whole run. Returns ``None`` when no version has logged anything.
    """
    sources = sorted(log_root.glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name.split("_")[1]))
    rows: list[dict[str, str]] = []
    columns: list[str] = []
    for source in sources:
        with open(source, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            for name in reader.fieldnames or []:
                if name not in columns:
                    columns.append(name)
            rows.extend(reader)
    if not rows:
        return None

    with open(destination, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return destination
