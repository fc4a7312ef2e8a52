"""``tnn train``: train a TNN on a dataset with PyTorch Lightning."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

EXIT_OK = 0
EXIT_INVALID_INPUT = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser(
        "train",
        help="train a model on a dataset (needs the train extra)",
        description=(
            "Train a TNN with PyTorch Lightning and write a run folder with checkpoints, metrics.csv, "
            "accuracy_by_step.png and summary.json. CONFIG is a graph config (.json/.yaml) or a training "
            "file (.yaml with model, data, optimizer and trainer sections); options given here override the file."
        ),
    )
    parser.add_argument("config", metavar="CONFIG", help="graph config or training file")

    data = parser.add_argument_group("data")
    data.add_argument("--data", help="dataset name (mnist, digits), folder of class subfolders, or .npz/.pt file (default: digits)")
    data.add_argument("--batch-size", type=int, help="samples per batch (default: 64)")
    data.add_argument("--max-samples", type=int, help="use only this many samples of the dataset, for quick runs")
    data.add_argument("--num-workers", type=int, help="data loader worker processes (default: 0)")

    model = parser.add_argument_group("model")
    model.add_argument("--n-times", type=int, help="time steps to unroll (default: the config's num_timesteps)")
    model.add_argument("--mode", choices=("biological", "full"), help="unroll: biological (forward) or full (full_unroll)")
    model.add_argument("--loss-weights", help="'last', 'all', or comma-separated weights, one per time step")

    optimizer = parser.add_argument_group("optimizer")
    optimizer.add_argument("--optimizer", choices=("adamw", "sgd"), help="optimizer (default: adamw)")
    optimizer.add_argument("--lr", type=float, help="peak learning rate (default: 0.001)")
    optimizer.add_argument("--weight-decay", type=float, help="weight decay (default: 0.0001)")
    optimizer.add_argument("--schedule", choices=("none", "step", "cosine", "warmup", "warmup_cosine"),
                           help="learning-rate schedule (default: none)")
    optimizer.add_argument("--warmup-epochs", type=float, help="epochs of linear warm-up for warmup schedules")

    trainer = parser.add_argument_group("trainer")
    trainer.add_argument("--epochs", type=int, help="epochs to train (default: 10)")
    trainer.add_argument("--out", help="run folder (default: runs/<CONFIG name>)")
    trainer.add_argument("--seed", type=int, help="random seed for weights and data order (default: 0)")
    trainer.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoints/last.ckpt")
    trainer.add_argument("--devices", type=int, help="number of devices (processes for CPU DDP; default: 1)")
    trainer.add_argument("--strategy", help="Lightning strategy, e.g. ddp (gloo on CPU, NCCL on GPU; default: auto)")
    trainer.add_argument("--accelerator", help="cpu, gpu or auto (default: auto)")
    trainer.add_argument("--threads", type=int,
                         help="torch threads per process (default: the idle CPUs by the 1-minute load average, divided by the CPU processes)")
    trainer.add_argument("--gradient-clip", type=float, help="clip the gradient norm to this value")
    trainer.add_argument("--limit-train-batches", type=_batch_limit, help="training batches per epoch: a count or a fraction")
    trainer.add_argument("--limit-val-batches", type=_batch_limit, help="validation batches per epoch: a count or a fraction")
    trainer.add_argument("--limit-test-batches", type=_batch_limit, help="test batches: a count or a fraction")
    trainer.add_argument("--no-progress-bar", action="store_true", help="hide the progress bar and model summary")
    parser.set_defaults(func=run)
    return parser


def _batch_limit(text: str) -> int | float:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a batch count or a fraction, got {text!r}") from None


def _loss_weights(text: str) -> str | list[float]:
    if text in ("last", "all"):
        return text
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        from ..errors import ConfigError

        raise ConfigError(f"--loss-weights {text!r} is invalid; use 'last', 'all' or comma-separated numbers") from None


def build_settings(args: argparse.Namespace):
    """Merge the training file or graph config named by ``args.config`` with the command-line options."""
    from ..training.settings import TrainSettings, is_train_file, load_train_file

    config = Path(args.config)
    if not config.exists():
        raise FileNotFoundError(f"config {config} not found")
    settings = load_train_file(config) if is_train_file(config) else TrainSettings()
    if not is_train_file(config):
        settings.model.config = str(config)

    overrides = {
        ("data", "name"): args.data,
        ("data", "batch_size"): args.batch_size,
        ("data", "max_samples"): args.max_samples,
        ("data", "num_workers"): args.num_workers,
        ("model", "n_times"): args.n_times,
        ("model", "mode"): args.mode,
        ("model", "loss_weights"): _loss_weights(args.loss_weights) if args.loss_weights else None,
        ("optimizer", "name"): args.optimizer,
        ("optimizer", "lr"): args.lr,
        ("optimizer", "weight_decay"): args.weight_decay,
        ("optimizer", "schedule"): args.schedule,
        ("optimizer", "warmup_epochs"): args.warmup_epochs,
        ("trainer", "epochs"): args.epochs,
        ("trainer", "out"): args.out,
        ("trainer", "seed"): args.seed,
        ("trainer", "devices"): args.devices,
        ("trainer", "strategy"): args.strategy,
        ("trainer", "accelerator"): args.accelerator,
        ("trainer", "threads"): args.threads,
        ("trainer", "gradient_clip"): args.gradient_clip,
        ("trainer", "limit_train_batches"): args.limit_train_batches,
        ("trainer", "limit_val_batches"): args.limit_val_batches,
        ("trainer", "limit_test_batches"): args.limit_test_batches,
        ("trainer", "progress_bar"): False if args.no_progress_bar else None,
    }
    for (section, key), value in overrides.items():
        if value is not None:
            setattr(getattr(settings, section), key, value)
    settings.validate()
    return settings


def run(args: argparse.Namespace) -> int:
    """Train, then print the test accuracy overall and per time step."""
    from ..training import TrainingError, require_training_packages

    # The training modules log few INFO lines (thread count, data split); show them by default.
    training_logger = logging.getLogger("tnn_core.training")
    if training_logger.getEffectiveLevel() > logging.INFO:
        training_logger.setLevel(logging.INFO)

    try:
        require_training_packages()
        settings = build_settings(args)

        from ..training.evaluation import format_evaluation
        from ..training.runner import train

        result = train(settings, resume=args.resume)
    except TrainingError as exc:
        print(f"tnn train: error: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT

    if result.evaluation is None:  # a DDP rank other than 0: rank 0 reports
        return EXIT_OK
    print(format_evaluation(result.evaluation))
    print(f"wall time {result.wall_time_s:.1f} s; run folder {result.run_dir} "
          f"(summary.json, metrics.csv, accuracy_by_step.png, checkpoints/)")
    return EXIT_OK
