"""``tnn new-plugin``: write a ready-to-install plugin package for a new component."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..scaffold import SUPPORTED_KINDS, ScaffoldError, write_plugin

#: Kinds the command accepts, as typed on the command line; the scaffold supports ``SUPPORTED_KINDS``.
COMMAND_KINDS = ("cell", "harbor", "memory-op")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "new-plugin",
        help="write a plugin package for a new cell (pyproject, skeleton, conformance test, README)",
        description=(
            "Write a plugin package for a new component into DIR/tnn-cells-<name>: a pyproject.toml with the "
            "entry point, a documented cell skeleton that passes tnn_core.testing, a test that runs the "
            "conformance kit and a README. Supported kinds: " + ", ".join(SUPPORTED_KINDS) + "."
        ),
    )
    parser.add_argument("kind", choices=COMMAND_KINDS, help="kind of component (only 'cell' is supported so far)")
    parser.add_argument("name", help="class name of the component, e.g. LeakyCell; configs name it this way too")
    parser.add_argument("--dir", type=Path, default=Path("."), help="folder to create the package folder in (default: .)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    kind = args.kind.replace("-", "_")
    try:
        target = write_plugin(kind, args.name, args.dir)
    except ScaffoldError as exc:
        print(f"tnn new-plugin: error: {exc}", file=sys.stderr)
        return 1

    print(f"wrote {target}")
    print(f"next: pip install -e {target} && python -m pytest {target} && tnn plugins --kind {kind}")
    return 0
