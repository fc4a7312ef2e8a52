"""``tnn plugins``: list every component by kind with its distribution, version and load status."""

from __future__ import annotations

import argparse

from ..hooks import failed_hook_plugins, plugin_manager
from ..registry import KIND_PLURALS, KINDS, registry


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed components (cells, harbor policies, memory ops, schedules, EAD parts)",
        description="List every registered component by kind, with the distribution and version that provides it.",
    )
    parser.add_argument("--kind", choices=list(KINDS), help="show only this kind of component")
    parser.add_argument("--load", action="store_true", help="import every component to report import errors (listing alone imports nothing)")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    kinds = [args.kind] if args.kind else list(KINDS)
    failed = 0
    for kind in kinds:
        entries = list(registry.entries(kind))
        print(f"{KIND_PLURALS[kind]} ({KINDS[kind]}): {len(entries) if entries else 'none installed'}")
        names = [e.name for e in entries]
        for entry in entries:
            if args.load:
                try:
                    entry.load()
                except Exception:  # recorded on the entry and shown below
                    pass
            status = entry.status
            if names.count(entry.name) > 1:
                status += f"; name conflict: write \"{entry.qualified_name}\" to pick this one"
            line = f"  {entry.name:<28} {entry.distribution + ' ' + entry.version:<24} {status}"
            if entry.error is not None:
                line += f": {type(entry.error).__name__}: {entry.error}"
                failed += 1
            print(line)

    manager = plugin_manager()
    hook_plugins = [name for name, _ in manager.list_name_plugin() if name]
    print(f"hook plugins (tnn.hooks): {', '.join(sorted(hook_plugins)) if hook_plugins else 'none'}")
    for name, (dist, exc) in failed_hook_plugins.items():
        print(f"  {name:<28} {dist} failed: {type(exc).__name__}: {exc}")
    return 0
