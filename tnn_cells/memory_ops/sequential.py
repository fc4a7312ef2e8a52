"""A memory op that chains several memory ops."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.node import declared_forward_arguments

from ._common import (
    accepts_keyword,
    build_memory_op,
    call_memory_op,
    infer_memory_op_shape,
)

logger = logging.getLogger(__name__)

__all__ = ["Sequential"]


class Sequential(nn.Module):
    """Apply a list of memory ops in order, each to the previous op's output.

    ``(batch, *input_shape) -> (batch, *output shape of the last op)``, e.g.
    ``[{"name": "AdaptiveAvgPool", "output_size": [1, 1]},
    {"name": "FullyConnected", "out_channels": 1000, "activation": null}]``
    maps ``(batch, 512, 7, 7)`` to ``(batch, 1000)``. The first op gets the
    graph's ``in_channels`` and ``input_shape``, and each later op gets the
    previous op's output shape, inferred on the ``meta`` device without
    computation. Every op gets ``num_timesteps``. The ops are stored in
    ``sequential_mem`` as in PyTorchTNN, so state-dict keys read
    ``sequential_mem.<i>.<...>``.

    Args:
        list_of_func_kwargs: memory-op specs, applied in list order. At
            least one is needed. Required.
        in_channels: channels of the input, provided by the graph. Default None.
        input_shape: shape of the input without the batch dimension, provided
            by the graph. Without it, ops after the first get no inferred
            arguments, so their specs must set ``in_channels`` themselves.
            Default None.
        num_timesteps: the graph's number of time steps, provided by the
            graph. Default None.
        residual_shape: shape of the node's harbor output, provided by the
            graph. Ops that take a residual input (``ResidualAdd``) get it and,
            on nodes with ``residual: true``, the harbor output at every step,
            as in PyTorchTNN. Default None.
    """

    def __init__(
        self,
        list_of_func_kwargs: Sequence[Mapping[str, Any]],
        in_channels: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_timesteps: int | None = None,
        residual_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()

        if not isinstance(list_of_func_kwargs, (list, tuple)) or not list_of_func_kwargs:
            raise ValueError(
                f"list_of_func_kwargs must be a non-empty list of memory-op specs, got {list_of_func_kwargs!r}"
            )

        ops = []
        current_shape = None if input_shape is None else tuple(input_shape)
        current_channels = in_channels
        for index, spec in enumerate(list_of_func_kwargs):
            op = build_memory_op(
                spec, f"list_of_func_kwargs[{index}]", current_shape, num_timesteps, current_channels, residual_shape
            )
            ops.append(op)

            if current_shape is not None:
                current_shape = infer_memory_op_shape(op, current_shape, accepts_keyword(op, "curr_timestep"), residual_shape)
                logger.debug("Sequential op %d (%s) outputs shape %s", index, type(op).__name__, current_shape)
            current_channels = None

        self.sequential_mem = nn.ModuleList(ops)
        self._takes_timestep = [accepts_keyword(op, "curr_timestep") for op in ops]
        self._takes_residual = ["residual" in declared_forward_arguments(op) for op in ops]

    @classmethod
    def nested_specs(cls, kwargs: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
        """Return ``(kind, key path, spec)`` for each memory-op spec in ``kwargs`` (this level only)."""
        specs = kwargs.get("list_of_func_kwargs")
        if not isinstance(specs, (list, tuple)):
            return []
        return [("memory_op", f"list_of_func_kwargs[{index}]", spec) for index, spec in enumerate(specs)]

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None, residual: torch.Tensor | None = None) -> torch.Tensor:
        """Apply every op in order, passing ``curr_timestep`` and ``residual`` to the ops that declare them."""
        for op, takes_timestep, takes_residual in zip(self.sequential_mem, self._takes_timestep, self._takes_residual):
            if takes_residual:
                kwargs: dict[str, Any] = {"residual": residual}
                if takes_timestep:
                    kwargs["curr_timestep"] = curr_timestep
                x = op(x, **kwargs)
            else:
                x = call_memory_op(op, takes_timestep, x, curr_timestep)
        return x
