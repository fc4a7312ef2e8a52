"""Graph structure of a TNN: predecessors, feedback edges and node orders.

Which edges are feedback is decided from the graph, never from node names:

* with ``ff_order`` in the config, an edge is feedback when its source does
  not come before its target in that order (PyTorchTNN's meaning);
* otherwise a depth-first search starts at the input nodes (in config order)
  and, from each node, first follows the edges into nodes whose
  ``shape_from`` is that node (their feedforward input), then the other
  edges in config node order. An edge into a node that is still on the
  search path closes a cycle and is feedback (self-loops included). A DAG
  therefore has no feedback edges, and in a cycle the edge that leads back
  towards the input is the feedback one.
"""

from __future__ import annotations

import graphlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Topology"]


@dataclass
class Topology:
    """Static structure of a graph, computed once from its validated config."""

    node_names: list[str]
    edges: list[tuple[str, str]]
    input_nodes: list[str]
    output_node: str
    shape_from: dict[str, str | None]
    ff_order: list[str] | None = None

    predecessors: dict[str, list[str]] = field(init=False)
    successors: dict[str, list[str]] = field(init=False)
    feedback_edges: set[tuple[str, str]] = field(init=False)
    full_order: list[str] = field(init=False)
    build_order: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.predecessors = {n: [] for n in self.node_names}
        self.successors = {n: [] for n in self.node_names}
        for src, dst in dict.fromkeys(self.edges):  # duplicates collapse, order kept
            self.predecessors[dst].append(src)
            self.successors[src].append(dst)
        for n in self.node_names:
            self.predecessors[n].sort()  # PyTorchTNN's harbor order: plain string sort
        self.feedback_edges = self._find_feedback_edges()
        self.full_order = self._order_without(self.feedback_edges)
        self.build_order = self._build_order()

    # -- derived structure -------------------------------------------------

    def reachable_from(self, start: Iterable[str]) -> set[str]:
        """Return the nodes reachable from ``start`` (including it) along edges."""
        seen = set(start)
        queue = deque(seen)
        while queue:
            node = queue.popleft()
            for nxt in self.successors[node]:
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return seen

    def _find_feedback_edges(self) -> set[tuple[str, str]]:
        if self.ff_order is not None:
            position = {n: i for i, n in enumerate(self.ff_order)}
            return {(u, v) for u, v in self.edges if position[u] >= position[v]}

        config_position = {n: i for i, n in enumerate(self.node_names)}

        def visit_order(node: str) -> list[str]:
            return sorted(self.successors[node], key=lambda nxt: (self.shape_from.get(nxt) != node, config_position[nxt]))

        feedback: set[tuple[str, str]] = set()
        finished: set[str] = set()
        on_path: set[str] = set()
        for root in self.input_nodes:
            if root in finished:
                continue
            # Iterative depth-first search; each frame is (node, successors still to visit).
            stack = [(root, iter(visit_order(root)))]
            on_path.add(root)
            while stack:
                node, pending = stack[-1]
                nxt = next(pending, None)
                if nxt is None:
                    stack.pop()
                    on_path.discard(node)
                    finished.add(node)
                elif nxt in on_path:
                    feedback.add((node, nxt))
                elif nxt not in finished:
                    on_path.add(nxt)
                    stack.append((nxt, iter(visit_order(nxt))))
        return feedback

    def _order_without(self, removed: set[tuple[str, str]]) -> list[str]:
        if self.ff_order is not None:
            return list(self.ff_order)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for n in self.node_names:
            sorter.add(n, *[p for p in self.predecessors[n] if (p, n) not in removed])
        return list(sorter.static_order())

    def _build_order(self) -> list[str]:
        # A node is built after its feedforward predecessors, whose output shapes its
        # harbor needs, and after its shape_from node, which sets its spatial size.
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for n in self.full_order:
            sorter.add(n, *[p for p in self.predecessors[n] if (p, n) not in self.feedback_edges])
        for n in self.full_order:
            if self.shape_from.get(n) is not None:
                sorter.add(n, self.shape_from[n])
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as exc:
            raise ValueError(f"shape_from forms a cycle: {' -> '.join(exc.args[1])}") from exc

    # -- queries -------------------------------------------------------------

    def is_feedback(self, src: str, dst: str) -> bool:
        """Return whether the edge ``src -> dst`` reads the previous step in the full unroll."""
        return (src, dst) in self.feedback_edges

    def feedforward_input(self, node: str) -> str | None:
        """Return the predecessor that is ``node``'s feedforward input, or ``None`` for stimulus nodes."""
        return None if node in self.input_nodes else self.shape_from[node]

    def harbor_order(self, node: str, split: bool = False) -> list[str | None]:
        """Return the node's inputs in concatenation order; ``None`` stands for the stimulus.

        The default is PyTorchTNN's order: stimulus first, then predecessors
        sorted by name. With ``split`` the feedforward input comes first and
        the other predecessors follow, sorted by name.
        """
        stimulus: list[str | None] = [None] if node in self.input_nodes else []
        preds = list(self.predecessors[node])
        if not split or node in self.input_nodes:
            return stimulus + preds
        ff = self.feedforward_input(node)
        return [ff] + [p for p in preds if p != ff]

    def stimulus_arrival_step(self, full: bool = False) -> dict[str, int | None]:
        """Return, per node, the first time step whose output depends on the stimulus.

        In the biological unroll every edge costs one step, so this is the
        number of edges on the shortest path from an input node. In the full
        unroll only feedback edges cost a step. ``None`` marks nodes the
        stimulus never reaches.
        """
        arrival: dict[str, int | None] = {n: None for n in self.node_names}
        # 0-1 breadth-first search: edge cost 1 (biological) or 1 only for feedback edges (full).
        queue: deque[tuple[str, int]] = deque((n, 0) for n in self.input_nodes)
        for n in self.input_nodes:
            arrival[n] = 0
        while queue:
            node, step = queue.popleft()
            if arrival[node] is not None and step > arrival[node]:
                continue
            for nxt in self.successors[node]:
                cost = 1 if (not full or self.is_feedback(node, nxt)) else 0
                candidate = step + cost
                if arrival[nxt] is None or candidate < arrival[nxt]:
                    arrival[nxt] = candidate
                    if cost == 0:
                        queue.appendleft((nxt, candidate))
                    else:
                        queue.append((nxt, candidate))
        return arrival

    def longest_path_edges(self) -> int:
        """Return the number of edges on the longest path from an input node to the output, ignoring feedback edges."""
        order = self._order_without(self.feedback_edges) if self.ff_order is None else self.full_order
        longest: dict[str, int | None] = {n: (0 if n in self.input_nodes else None) for n in self.node_names}
        for n in order:
            for p in self.predecessors[n]:
                if (p, n) in self.feedback_edges or longest[p] is None:
                    continue
                longest[n] = max(longest[n] or 0, longest[p] + 1)
        return longest[self.output_node] or 0

