"""Unroll schedules: which node runs when, and which step each input is read from.

A schedule is compiled once per graph into an ``UnrollPlan``, a static list
of node indices with their input sources, so the per-step loop does no
sorting, searching or graph queries. Schedules are plugins in the
``tnn.schedules`` entry-point group; the built-ins are ``biological`` and
``full``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from .topology import Topology

__all__ = ["InputSource", "PlanStep", "UnrollPlan", "Schedule", "BiologicalSchedule", "FullSchedule", "STIMULUS"]

#: Source index that stands for the stimulus.
STIMULUS = -1


@dataclass(frozen=True)
class InputSource:
    """Source of one harbor input: the stimulus, or a node's output at this or the previous step."""

    node_index: int
    current_step: bool


@dataclass(frozen=True)
class PlanStep:
    """One node to run, with its inputs in harbor order."""

    node_index: int
    sources: tuple[InputSource, ...]


@dataclass(frozen=True)
class UnrollPlan:
    """The compiled order of one time step."""

    name: str
    steps: tuple[PlanStep, ...]


class Schedule(Protocol):
    """Compiles a graph's topology into an ``UnrollPlan``."""

    name: str

    def compile(self, topology: Topology, harbor_orders: dict[str, list[str | None]]) -> UnrollPlan: ...


def _index(topology: Topology) -> dict[str, int]:
    return {n: i for i, n in enumerate(topology.node_names)}


class BiologicalSchedule:
    """Every node reads its predecessors' outputs from the previous step (zeros at step 0).

    One time step is one layer's processing: a node at ``d`` edges from the
    input first sees the stimulus at step ``d``. Only input nodes see the
    stimulus of the current step. Nodes run in build order, which does not
    affect the result.
    """

    name = "biological"

    def compile(self, topology: Topology, harbor_orders: dict[str, list[str | None]]) -> UnrollPlan:
        index = _index(topology)
        steps = []
        for node in topology.build_order:
            sources = tuple(
                InputSource(STIMULUS, True) if src is None else InputSource(index[src], False) for src in harbor_orders[node]
            )
            steps.append(PlanStep(index[node], sources))
        return UnrollPlan(self.name, tuple(steps))


class FullSchedule:
    """A complete feedforward pass per step: feedforward edges read the current step, feedback edges the previous one.

    Nodes run in topological order of the graph without its feedback edges
    (see ``tnn_core.topology`` for how feedback edges are found).
    """

    name = "full"

    def compile(self, topology: Topology, harbor_orders: dict[str, list[str | None]]) -> UnrollPlan:
        index = _index(topology)
        steps = []
        for node in topology.full_order:
            sources = []
            for src in harbor_orders[node]:
                if src is None:
                    sources.append(InputSource(STIMULUS, True))
                else:
                    sources.append(InputSource(index[src], not topology.is_feedback(src, node)))
            steps.append(PlanStep(index[node], tuple(sources)))
        return UnrollPlan(self.name, tuple(steps))
