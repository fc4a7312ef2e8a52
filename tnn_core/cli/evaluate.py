"""``tnn evaluate``: evaluate a checkpoint written by ``tnn train``."""

from __future__ import annotations

import argparse
import sys

EXIT_OK = 0
EXIT_INVALID_INPUT = 1


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate",
        help="evaluate a trained checkpoint (needs the train extra)",
        description=(
            "Rebuild the model stored in a tnn train checkpoint, evaluate it on the test split of a dataset, "
            "print the accuracy overall and per time step and write summary.json and accuracy_by_step.png."
        ),
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a .ckpt file from a run folder's checkpoints/")
    parser.add_argument("--data", help="dataset name, image folder or .npz/.pt file (default: the training dataset)")
    parser.add_argument("--batch-size", type=int, help="samples per batch (default: the training batch size)")
    parser.add_argument("--out", help="folder for summary.json and accuracy_by_step.png (default: RUN/evaluation)")
    parser.add_argument("--threads", type=int, help="torch threads (default: the idle CPUs by the 1-minute load average)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Evaluate the checkpoint and print the results."""
    from ..training import TrainingError, require_training_packages

    try:
        require_training_packages()
        from ..training.evaluation import format_evaluation
        from ..training.runner import evaluate_checkpoint

        result = evaluate_checkpoint(
            args.checkpoint, data=args.data, out=args.out, batch_size=args.batch_size, threads=args.threads
        )
    except TrainingError as exc:
        print(f"tnn evaluate: error: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT

    print(format_evaluation(result.evaluation))
    print(f"wrote {result.summary_path} and {result.out_dir / 'accuracy_by_step.png'}")
    return EXIT_OK
