"""``TemporalGraph``: a TNN built from a config and unrolled in time."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from . import hooks
from .builder import NodeInfo, build_nodes
from .config import ConfigSource, load_config
from .errors import ConfigError, UnrollError
from .registry import registry
from .schedules import STIMULUS, UnrollPlan
from .spec import GraphSpec, parse_graph_config

logger = logging.getLogger(__name__)

__all__ = ["TemporalGraph", "UnrollResult"]


@dataclass
class UnrollResult:
    """Everything one unroll produced.

    Attributes:
        outputs: the output node's output at every step, ``(batch, time, ...)``.
        activations: ``{t: {node: tensor}}`` when requested, else empty.
    """

    outputs: torch.Tensor
    activations: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)

    @property
    def output(self) -> torch.Tensor:
        """The output node's output at the last step, ``(batch, ...)``."""
        return self.outputs[:, -1]


class TemporalGraph(nn.Module):
    """A temporal neural network built from a JSON/YAML config or a dict.

    The signature is PyTorchTNN's, so code written for it ports by changing
    the import. All parameters exist right after construction (shapes are
    inferred on the meta device), so ``state_dict``, optimizers and DDP work
    before any forward pass, and construction touches neither batch-norm
    statistics nor the global random generator beyond parameter init.

    Args:
        model_config_file: path to a ``.json``/``.yaml`` config, or a dict
            (never modified).
        recurrent_module: ``None`` or a subclass of ``tnn_core.RecurrentModule``
            used for every node. PyTorchTNN's ``RecurrentModuleRGC`` is
            accepted and not needed.
        input_shape: ``[C, H, W]`` of the stimulus; overrides the config.
        num_timesteps: overrides the config's ``num_timesteps`` (sizes
            time-varying batch norm and is the default ``n_times``).
        transform: callable applied to the inputs before every unroll.

    Raises:
        ConfigError: listing every problem in the config, each with its path.
    """

    def __init__(
        self,
        model_config_file: ConfigSource,
        recurrent_module: type[nn.Module] | None = None,
        input_shape: list[int] | tuple[int, int, int] | None = None,
        num_timesteps: int | None = None,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        config, label = load_config(model_config_file)
        spec = parse_graph_config(config, label, input_shape=input_shape, num_timesteps=num_timesteps)
        self.spec: GraphSpec = spec
        self.topology = spec.topology
        self.transform = transform if transform is not None else nn.Identity()

        try:
            modules, infos = build_nodes(spec, recurrent_module)
        except ConfigError as exc:
            if exc.source is not None:
                raise
            raise type(exc)(exc.problems, source=label) from exc
        self.nodes = nn.ModuleDict({name: modules[name] for name in self.topology.build_order})
        self.node_info: dict[str, NodeInfo] = infos
        self._node_list = [modules[name] for name in self.topology.node_names]
        self._output_shapes = [infos[name].output_shape for name in self.topology.node_names]
        self._output_index = self.topology.node_names.index(self.topology.output_node)
        self._plans: dict[str, UnrollPlan] = {}

    # -- PyTorchTNN-compatible properties ---------------------------------------

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return self.spec.input_shape

    @property
    def num_timesteps(self) -> int | None:
        return self.spec.num_timesteps

    @property
    def node_names(self) -> list[str]:
        return list(self.topology.node_names)

    @property
    def edges(self) -> list[tuple[str, str]]:
        return list(self.topology.edges)

    @property
    def input_nodes(self) -> list[str]:
        return list(self.topology.input_nodes)

    @property
    def output_node(self) -> str:
        return self.topology.output_node

    @property
    def ff_order(self) -> list[str] | None:
        return self.topology.ff_order

    @property
    def topo_sorted_nodes(self) -> list[str]:
        """Node order of the full unroll."""
        return list(self.topology.full_order)

    @property
    def feedback_edges(self) -> list[tuple[str, str]]:
        return [e for e in self.topology.edges if e in self.topology.feedback_edges]

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            nodes = self._modules.get("nodes")
            if nodes is not None and name in nodes:  # PyTorchTNN code reads nodes as attributes
                return nodes[name]
            raise

    # -- unrolling ---------------------------------------------------------------

    def plan(self, mode: str) -> UnrollPlan:
        """Return the compiled plan of the unroll schedule ``mode`` (a ``tnn.schedules`` name)."""
        plan = self._plans.get(mode)
        if plan is None:
            schedule = registry.get("schedule", mode, "mode")()
            orders = {name: info.harbor_order for name, info in self.node_info.items()}
            plan = schedule.compile(self.topology, orders)
            self._plans[mode] = plan
        return plan

    def forward(
        self,
        inputs: torch.Tensor,
        n_times: int | None = None,
        return_all: bool = False,
        return_activations: bool = False,
    ) -> Any:
        """Biological unroll: every node reads its predecessors' outputs from the previous step.

        Args:
            inputs: ``(batch, time, C, H, W)`` with ``time == n_times``, or
                ``(batch, C, H, W)`` shown at every step.
            n_times: number of steps; defaults to ``num_timesteps``, then to
                the input's time dimension.
            return_all: return the output at every step, ``(batch, time, ...)``,
                instead of the last step's ``(batch, ...)``.
            return_activations: also return ``{t: {node: output}}``.

        Returns:
            The output (see ``return_all``), or ``(output, activations)``.
        """
        result = self.unroll(inputs, n_times=n_times, mode="biological", return_activations=return_activations)
        return self._legacy_return(result, return_all, return_activations)

    def full_unroll(
        self,
        inputs: torch.Tensor,
        n_times: int | None = None,
        return_all: bool = False,
        return_activations: bool = False,
    ) -> Any:
        """Standard unroll: feedforward edges read the current step, feedback edges the previous one.

        Arguments and return values are those of ``forward``.
        """
        result = self.unroll(inputs, n_times=n_times, mode="full", return_activations=return_activations)
        return self._legacy_return(result, return_all, return_activations)

    @staticmethod
    def _legacy_return(result: UnrollResult, return_all: bool, return_activations: bool) -> Any:
        output = result.outputs if return_all else result.output
        return (output, result.activations) if return_activations else output

    def unroll(
        self,
        inputs: torch.Tensor,
        n_times: int | None = None,
        mode: str = "biological",
        return_activations: bool = False,
    ) -> UnrollResult:
        """Unroll with the schedule ``mode`` and return an ``UnrollResult``."""
        n_times = self._check_inputs(inputs, n_times)
        plan = self.plan(mode)
        stimulus = self.transform(inputs)

        batch = stimulus.shape[0]
        zeros = [
            torch.zeros((batch, *shape), dtype=stimulus.dtype, device=stimulus.device) for shape in self._output_shapes
        ]
        previous: list[torch.Tensor] = zeros
        states: list[Any] = [None] * len(self._node_list)
        outputs: list[torch.Tensor] = []
        activations: dict[int, dict[str, torch.Tensor]] = {}
        observe = hooks.has_step_observers()
        names = self.topology.node_names

        for t in range(n_times):
            frame = stimulus[:, t] if stimulus.ndim == 5 else stimulus
            current: list[torch.Tensor] = list(previous)
            for step in plan.steps:
                node_inputs = [
                    frame if src.node_index == STIMULUS
                    else (current[src.node_index] if src.current_step else previous[src.node_index])
                    for src in step.sources
                ]
                index = step.node_index
                output, states[index] = self._node_list[index](node_inputs, states[index], t)
                current[index] = output
                if observe:
                    hooks.call_unroll_step(graph=self, node=names[index], timestep=t, output=output, state=states[index])

            previous = current
            outputs.append(current[self._output_index])
            if return_activations:
                activations[t] = dict(zip(names, current))

        hooks.call_unroll_end(self, plan.name, n_times)
        return UnrollResult(outputs=torch.stack(outputs, dim=1), activations=activations)

    def _check_inputs(self, inputs: Any, n_times: int | None) -> int:
        if not isinstance(inputs, torch.Tensor):
            raise UnrollError(f"inputs must be a torch.Tensor, got {type(inputs).__name__}")
        expected = tuple(self.input_shape)
        if inputs.ndim == 5:
            if n_times is None:
                n_times = self.num_timesteps if self.num_timesteps is not None else inputs.shape[1]
            if inputs.shape[1] != n_times:
                raise UnrollError(
                    f"inputs have {inputs.shape[1]} time steps (dimension 1 of (batch, time, C, H, W)) but n_times is "
                    f"{n_times}; pass n_times={inputs.shape[1]} or a 4-D input repeated at every step"
                )
            sample = tuple(inputs.shape[2:])
        elif inputs.ndim == 4:
            sample = tuple(inputs.shape[1:])
            if n_times is None:
                n_times = self.num_timesteps
            if n_times is None:
                n_times = self.topology.longest_path_edges() + 1
                logger.info("n_times not given and the config has no num_timesteps; unrolling %d steps, the first "
                            "step at which the output sees the stimulus in the biological unroll", n_times)
        else:
            raise UnrollError(
                f"inputs must be (batch, time, C, H, W) or (batch, C, H, W), got shape {list(inputs.shape)}"
            )
        if sample != expected:
            raise UnrollError(f"each input frame must have shape {list(expected)} (the graph's input_shape), got {list(sample)}")
        if not isinstance(n_times, int) or isinstance(n_times, bool) or n_times < 1:
            raise UnrollError(f"n_times must be a positive integer, got {n_times!r}")
        for name, info in self.node_info.items():
            if info.max_timesteps is not None and n_times > info.max_timesteps:
                raise UnrollError(
                    f"node {name!r} uses time-varying batch norm built for {info.max_timesteps} time steps "
                    f"(num_timesteps), so it cannot unroll {n_times} steps; build the graph with "
                    f"num_timesteps={n_times} or unroll at most {info.max_timesteps} steps"
                )
        return n_times

    def extra_repr(self) -> str:
        return f"input_shape={list(self.input_shape)}, num_timesteps={self.num_timesteps}, output_node={self.output_node!r}"
