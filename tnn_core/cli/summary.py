"""``tnn summary``: per-node components, output shapes and parameters of a graph."""

from __future__ import annotations

import argparse

from ..temporal_graph import TemporalGraph


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "summary",
        help="build a graph and print its nodes, shapes, parameters and feedback edges",
        description="Build the graph (no forward pass) and print, per node: harbor policy, pre-memory op, recurrent "
        "cell, post-memory op, output shape, parameters, and the first step at which the stimulus reaches it.",
    )
    parser.add_argument("config", metavar="CONFIG", help="config file (.json, .yaml)")
    parser.add_argument("--input-shape", nargs=3, type=int, metavar=("C", "H", "W"), help="stimulus shape; overrides the config's input_shape")
    parser.add_argument("--num-timesteps", type=int, metavar="T", help="overrides the config's num_timesteps")
    parser.set_defaults(func=run)
    return parser


def run(args: argparse.Namespace) -> int:
    graph = TemporalGraph(args.config, input_shape=args.input_shape, num_timesteps=args.num_timesteps)
    print(format_summary(graph))
    return 0


def format_summary(graph: TemporalGraph) -> str:
    """Return the summary table of ``graph`` as text."""
    bio = graph.topology.stimulus_arrival_step(full=False)
    full = graph.topology.stimulus_arrival_step(full=True)

    header = ("node", "harbor", "pre-memory", "cell", "post-memory", "output", "params", "arrival bio/full")
    rows = []
    for name in graph.topology.full_order:
        module = graph.nodes[name]
        spec = graph.spec.nodes[name]
        params = sum(p.numel() for p in module.parameters())
        rows.append((
            name,
            spec.harbor_policy["name"],
            spec.pre_memory["name"],
            spec.recurrent_cell["name"],
            spec.post_memory["name"],
            "x".join(map(str, graph.node_info[name].output_shape)),
            f"{params:,}",
            f"{_step(bio[name])}/{_step(full[name])}",
        ))

    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        f"graph: {graph.spec.source}",
        f"input_shape: {list(graph.input_shape)}, num_timesteps: {graph.num_timesteps}, output node: {graph.output_node}",
        "  ".join(h.ljust(w) for h, w in zip(header, widths)),
    ]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in rows]

    total = sum(p.numel() for p in graph.parameters())
    trainable = sum(p.numel() for p in graph.parameters() if p.requires_grad)
    lines.append(f"total parameters: {total:,} ({trainable:,} trainable)")
    feedback = graph.feedback_edges
    lines.append("feedback edges: " + (", ".join(f"{u} -> {v}" for u, v in feedback) if feedback else "none"))
    lines.append("arrival: first time step whose output depends on the stimulus (biological / full unroll)")
    return "\n".join(lines)


def _step(value: int | None) -> str:
    return "never" if value is None else str(value)
