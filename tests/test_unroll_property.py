"""Property: on a feedforward DAG the biological unroll reaches the full unroll's output once the stimulus has arrived."""

from __future__ import annotations

from typing import Any

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tnn_core import TemporalGraph


@st.composite
def feedforward_dags(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a config of 3 to 7 conv nodes with edges i -> j for i < j, all reachable from the input node n0."""
    count = draw(st.integers(min_value=3, max_value=7))
    names = [f"n{i}" for i in range(count)]
    edges: list[tuple[int, int]] = []
    shape_from: dict[int, int] = {}
    for j in range(1, count):
        # Every node gets at least one predecessor, so every node is reachable from n0.
        predecessors = draw(st.sets(st.integers(min_value=0, max_value=j - 1), min_size=1, max_size=j))
        edges.extend((i, j) for i in sorted(predecessors))
        shape_from[j] = draw(st.sampled_from(sorted(predecessors)))

    nodes = []
    for i, name in enumerate(names):
        channels = draw(st.integers(min_value=1, max_value=3))
        node = {
            "name": name,
            "shape_from": names[shape_from[i]] if i else None,
            "pre_memory": {
                "name": "Conv2dCell",
                "out_channels": channels,
                "ksize": 3,
                "padding": 1,
                "activation": draw(st.sampled_from(["ReLU", "Tanh"])),
            },
            "recurrent_cell": {"name": "IdentityCell"},
        }
        if draw(st.booleans()):  # out_channels is optional; when given it is checked
            node["out_channels"] = channels
        nodes.append(node)
    return {
        "nodes": nodes,
        "edges": [{"from": names[i], "to": names[j]} for i, j in edges],
        "input_nodes": ["n0"],
        "output_node": names[-1],
        "input_shape": [draw(st.integers(min_value=1, max_value=3)), 6, 6],
    }


def longest_path_edges(config: dict[str, Any]) -> int:
    """Return the number of edges on the longest path from n0 to the output node.

    The edges must be listed by increasing target index, as ``feedforward_dags`` lists them.
    """
    depth = {node["name"]: 0 for node in config["nodes"]}
    for edge in config["edges"]:
        depth[edge["to"]] = max(depth[edge["to"]], depth[edge["from"]] + 1)
    return depth[config["output_node"]]


@settings(max_examples=25, deadline=None)
@given(config=feedforward_dags(), seed=st.integers(min_value=0, max_value=2**16), extra_steps=st.integers(min_value=1, max_value=2))
def test_biological_matches_full(config: dict[str, Any], seed: int, extra_steps: int):
    torch.manual_seed(seed)
    graph = TemporalGraph(config).eval()
    depth = longest_path_edges(config)
    assert graph.topology.longest_path_edges() == depth
    assert graph.feedback_edges == [], "a DAG has no feedback edges"

    n_times = depth + extra_steps
    x = torch.randn(2, *config["input_shape"])
    # Convolutions this small run faster on one thread, and up to 100 of them run per example.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            biological = graph(x, n_times=n_times, return_all=True)
            full = graph.full_unroll(x, n_times=n_times, return_all=True)
    finally:
        torch.set_num_threads(threads)

    for t in range(depth, n_times):
        torch.testing.assert_close(biological[:, t], full[:, t], msg=f"step {t} (longest path {depth} edges)")


def test_dag_longest_path_helper():
    config = {
        "nodes": [{"name": name} for name in ("n0", "n1", "n2", "n3")],
        "edges": [{"from": "n0", "to": "n1"}, {"from": "n1", "to": "n2"}, {"from": "n0", "to": "n3"}, {"from": "n2", "to": "n3"}],
        "output_node": "n3",
    }
    assert longest_path_edges(config) == 3


def test_dag_builds_without_out_channels():
    def node(name: str, shape_from: str | None) -> dict[str, Any]:
        return {"name": name, "shape_from": shape_from, "pre_memory": {"name": "Conv2dCell", "out_channels": 1, "ksize": 3, "padding": 1}}

    pairs = [("n0", "n1"), ("n0", "n2"), ("n1", "n2"), ("n0", "n3"), ("n1", "n3"), ("n2", "n3")]
    config = {
        "nodes": [node("n0", None), node("n1", "n0"), node("n2", "n1"), node("n3", "n0")],
        "edges": [{"from": a, "to": b} for a, b in pairs],
        "input_nodes": ["n0"],
        "output_node": "n3",
        "input_shape": [1, 6, 6],
    }
    graph = TemporalGraph(config)
    assert graph.node_info["n3"].input_shapes == [(1, 6, 6)] * 3
