"""``tnn validate``: report every problem of one or more configs."""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from ..spec import validate_config


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "validate",
        help="check configs and report every problem (exit 1 if any)",
        description="Validate graph configs without building them; every problem is reported with its config path.",
    )
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="config files (.json, .yaml)")
    parser.add_argument("--build", action="store_true", help="also build each graph, which checks shapes and channel counts")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.configs:
        try:
            spec = validate_config(path)
            if args.build:
                from ..temporal_graph import TemporalGraph

                TemporalGraph(path)
        except ConfigError as exc:
            failures += 1
            print(f"{path}: invalid", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            continue
        print(f"{path}: ok ({len(spec.nodes)} nodes, {len(spec.topology.edges)} edges, "
              f"{len(spec.topology.feedback_edges)} feedback)")
    return 1 if failures else 0
