"""``tnn validate``: report every problem of one or more configs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..config import load_config
from ..errors import ConfigError
from ..spec import parse_graph_config


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "validate",
        help="check configs and report every problem (exit 1 if any)",
        description="Validate graph configs: first every key, name and type (all problems at once, each with its "
        "config path), then, if those are valid, build the graph, which checks channel counts, shapes and argument "
        "values. A training file (with a 'model' section) is checked through the graph config it names.",
    )
    parser.add_argument("configs", nargs="+", metavar="CONFIG", help="config files (.json, .yaml) or training files")
    parser.add_argument("--no-build", action="store_true", help="check keys, names and types only, without building the graph")
    parser.set_defaults(func=run)
    return parser


def _graph_config(path: str) -> tuple[Any, str, Any]:
    """Return ``(graph config, label, input_shape override)`` for ``path``, following a training file's ``model.config``."""
    config, label = load_config(path)
    model = config.get("model")
    if "nodes" in config or not isinstance(model, Mapping):
        return config, label, None
    inner = model.get("config")
    if isinstance(inner, str):
        inner_config, inner_label = load_config(Path(path).parent / inner)
        return inner_config, f"{inner_label} (model.config of {label})", model.get("input_shape")
    if isinstance(inner, Mapping):
        return dict(inner), f"{label} model.config", model.get("input_shape")
    raise ConfigError(f"{label} is a training file whose 'model' section has no 'config' (a graph config path or mapping)")


def run(args: argparse.Namespace) -> int:
    failures = 0
    for path in args.configs:
        try:
            config, label, input_shape = _graph_config(path)
            spec = parse_graph_config(config, label, input_shape=input_shape)
            if not args.no_build:
                from ..temporal_graph import TemporalGraph

                TemporalGraph(config, input_shape=input_shape)
        except ConfigError as exc:
            failures += 1
            print(f"{path}: invalid", file=sys.stderr)
            for problem in exc.problems:
                print(f"  - {problem}", file=sys.stderr)
            continue
        print(f"{path}: ok ({len(spec.nodes)} nodes, {len(spec.topology.edges)} edges, "
              f"{len(spec.topology.feedback_edges)} feedback)")
    return 1 if failures else 0
