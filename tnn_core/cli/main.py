"""Entry point of the ``tnn`` command.

Each subcommand lives in its own module of this package and provides
``add_parser(subparsers) -> argparse.ArgumentParser`` (which sets
``func=<callable(args) -> int>`` as a default) . Exit codes: 0 on success,
1 on invalid input (bad config, data or checkpoint), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from ..errors import ConfigError, UnrollError

logger = logging.getLogger("tnn_core.cli")

#: Subcommand modules, in the order ``tnn --help`` lists them.
COMMAND_MODULES = (
    "plugins",
    "validate",
    "summary",
    "run",
    "convert_ptnn",
    "train",
    "evaluate",
    "new_plugin",
)

EXIT_OK = 0
EXIT_INVALID_INPUT = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """Build the ``tnn`` argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="tnn",
        description="Build, inspect, run and train temporal neural networks (TNNs) from JSON/YAML configs.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v: info, -vv: debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"{__package__}.{module_name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__package__}.{module_name}":
                continue  # subcommand not part of this installation
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``tnn`` command and return its exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors and 0 for --help
        return int(exc.code or 0)

    logging.basicConfig(
        level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)],
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE

    try:
        return int(args.func(args) or 0)
    except (ConfigError, UnrollError, FileNotFoundError, IsADirectoryError) as exc:
        print(f"tnn {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    except BrokenPipeError:  # output piped into a command that stopped reading, e.g. `tnn plugins | head`
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"tnn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
