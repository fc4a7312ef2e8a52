"""Benchmark: the compiled unroll plan against a per-step loop that queries the graph.

PyTorchTNN's unroll sorts each node's predecessors and searches node lists at
every step. This script runs the same node modules both ways, side by side,
and prints the median time of each and their ratio. Threads are pinned
(default 1) because the machines are shared 2-core boxes.

Usage: python bench/unroll_speed.py [--threads 2] [--repeats 15]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time

import torch

from tnn_core import TemporalGraph

logger = logging.getLogger("bench.unroll_speed")

# Small maps, many nodes and steps: per-step bookkeeping matters most here.
CONFIG = {
    "input_shape": [3, 8, 8],
    "num_timesteps": 12,
    "input_nodes": ["n0"],
    "output_node": "n7",
    "nodes": [
        {
            "name": f"n{i}",
            "shape_from": None if i == 0 else f"n{i - 1}",
            "harbor_policy": {"name": "ResizeConcat"},
            "pre_memory": {"name": "Conv2dCell", "out_channels": 4, "ksize": 3, "padding": 1, "activation": "ReLU"},
            "recurrent_cell": {"name": "TimeDecayRecurrentCell"},
            "post_memory": {"name": "Identity"},
            "out_channels": 4,
        }
        for i in range(8)
    ],
    "edges": [{"from": f"n{i}", "to": f"n{i + 1}"} for i in range(7)]
    + [{"from": f"n{i + 2}", "to": f"n{i}"} for i in range(6)],
}


def unroll_with_graph_queries(graph: TemporalGraph, inputs: torch.Tensor, n_times: int) -> torch.Tensor:
    """Biological unroll that rebuilds each node's inputs from graph queries at every step."""
    edges = graph.edges
    names = list(graph.node_names)
    outputs: dict[str, torch.Tensor] = {}
    states: dict[str, object] = {}
    last = []
    for t in range(n_times):
        new_outputs = {}
        for node in names:
            node_inputs = [inputs] if node in graph.input_nodes else []
            for pred in sorted(src for src, dst in edges if dst == node):
                if t == 0:
                    shape = graph.node_info[names[names.index(pred)]].output_shape
                    node_inputs.append(torch.zeros((inputs.shape[0], *shape)))
                else:
                    node_inputs.append(outputs[pred])
            new_outputs[node], states[node] = graph.nodes[node](node_inputs, states.get(node), t)
        outputs = new_outputs
        last.append(outputs[graph.output_node])
    return torch.stack(last, dim=1)


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default: 1, so a busy shared machine disturbs less)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repeats per variant (default: 15)")
    parser.add_argument("--batch", type=int, default=4, help="batch size (default: 4)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    graph = TemporalGraph(CONFIG).eval()
    inputs = torch.randn(args.batch, *graph.input_shape)
    steps = graph.num_timesteps

    with torch.no_grad():
        planned = graph(inputs, n_times=steps, return_all=True)
        queried = unroll_with_graph_queries(graph, inputs, steps)
        torch.testing.assert_close(planned, queried)

        t_plan = median_seconds(lambda: graph(inputs, n_times=steps), args.repeats)
        t_query = median_seconds(lambda: unroll_with_graph_queries(graph, inputs, steps), args.repeats)

    print(f"graph: 8 nodes, 13 edges, {steps} steps, batch {args.batch}, {args.threads} threads, median of {args.repeats}")
    print(f"compiled plan:        {t_plan * 1000:8.2f} ms")
    print(f"per-step graph query: {t_query * 1000:8.2f} ms")
    print(f"ratio (query / plan): {t_query / t_plan:8.2f}")


if __name__ == "__main__":
    main()
