"""Residual memory op: ``activation(feedforward(x) + residual_branch(harbor output))``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.layers import make_activation

from ._common import accepts_keyword, build_memory_op, call_memory_op, infer_memory_op_shape
from .identity import Identity

logger = logging.getLogger(__name__)

__all__ = ["ResidualAdd"]


class ResidualAdd(nn.Module):
    """Add a residual connection from the node's harbor output, as in a ResNet block.

    Computes ``activation(feedforward(x) + residual_branch(residual))``, where
    ``x`` is this op's input (the cell output when used as post-memory op) and
    ``residual`` is the node's harbor output, which the graph passes for
    nodes with ``"residual": true``. Both branches are memory-op specs such as
    ``{"name": "Conv2dCell", "out_channels": 64, "ksize": 3, "padding": 1}``;
    the graph's ``in_channels``, ``input_shape`` and ``num_timesteps`` are
    passed on to them. State-dict keys follow PyTorchTNN:
    ``feedforward.<...>`` and ``residual.<...>``.

    Both branches must produce the same shape, e.g.
    ``(batch, channels, height, width)``. This is checked at construction
    when the shapes are known, and at every call.

    Args:
        feedforward_func_kwargs: memory-op spec applied to ``x``. Required.
        residual_func_kwargs: memory-op spec applied to the harbor output,
            e.g. a strided 1x1 ``Conv2dCell`` that matches the feedforward
            shape. Default None (the harbor output is added unchanged).
        activation: ``torch.nn`` activation class name applied to the sum,
            or ``None`` for none. Default None.
        activation_func_kwargs: keyword arguments of the activation class.
            Default None (no arguments).
        in_channels: channels of ``x``, provided by the graph. Default None.
        input_shape: shape of ``x`` without the batch dimension, provided
            by the graph. Default None.
        num_timesteps: the graph's number of time steps, provided by the
            graph. Default None.
        residual_shape: shape of the harbor output without the batch
            dimension, which the graph provides to nodes with
            ``"residual": true``. Required in practice: ``None`` raises
            ``ValueError``.
    """

    def __init__(
        self,
        feedforward_func_kwargs: Mapping[str, Any],
        residual_func_kwargs: Mapping[str, Any] | None = None,
        activation: str | None = None,
        activation_func_kwargs: Mapping[str, Any] | None = None,
        in_channels: int | None = None,
        input_shape: Sequence[int] | None = None,
        num_timesteps: int | None = None,
        residual_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()

        if residual_shape is None:
            raise ValueError(
                "residual_shape is missing: this op adds the node's harbor output, so set \"residual\": true "
                "on the node (or pass residual_shape when building the op directly)"
            )
        if not isinstance(residual_shape, (list, tuple)) or not residual_shape:
            raise ValueError(f"residual_shape must be a non-empty shape such as [64, 56, 56], got {residual_shape!r}")

        self.feedforward = build_memory_op(
            feedforward_func_kwargs, "feedforward_func_kwargs", input_shape, num_timesteps, in_channels
        )
        if residual_func_kwargs is None:
            self.residual = Identity()
        else:
            self.residual = build_memory_op(
                residual_func_kwargs, "residual_func_kwargs", tuple(residual_shape), num_timesteps
            )
        self.activation = make_activation(activation, activation_func_kwargs)

        self._feedforward_takes_timestep = accepts_keyword(self.feedforward, "curr_timestep")
        self._residual_takes_timestep = accepts_keyword(self.residual, "curr_timestep")

        if input_shape is not None:
            self._check_branch_shapes(tuple(input_shape), tuple(residual_shape))

    @classmethod
    def nested_specs(cls, kwargs: Mapping[str, Any]) -> list[tuple[str, str, Any]]:
        """Return ``(kind, key path, spec)`` for each memory-op spec in ``kwargs`` (this level only)."""
        specs = []
        if "feedforward_func_kwargs" in kwargs:
            specs.append(("memory_op", "feedforward_func_kwargs", kwargs["feedforward_func_kwargs"]))
        if kwargs.get("residual_func_kwargs") is not None:
            specs.append(("memory_op", "residual_func_kwargs", kwargs["residual_func_kwargs"]))
        return specs

    def _check_branch_shapes(self, input_shape: tuple[int, ...], residual_shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` unless both branches give the same output shape."""
        feedforward_out = infer_memory_op_shape(self.feedforward, input_shape, self._feedforward_takes_timestep)
        residual_out = infer_memory_op_shape(self.residual, residual_shape, self._residual_takes_timestep)
        if feedforward_out != residual_out:
            raise ValueError(
                f"the branches give different shapes: feedforward_func_kwargs maps {list(input_shape)} "
                f"to {list(feedforward_out)} but the residual branch maps the harbor output {list(residual_shape)} "
                f"to {list(residual_out)}. Set residual_func_kwargs to an op that produces {list(feedforward_out)}, "
                f"e.g. a Conv2dCell with out_channels {feedforward_out[0]} and a matching stride"
            )

    def forward(
        self,
        x: torch.Tensor,
        residual: torch.Tensor | None = None,
        curr_timestep: int | None = None,
    ) -> torch.Tensor:
        """Return ``activation(feedforward(x) + residual_branch(residual))``.

        ``x`` and ``residual`` are ``(batch, ...)`` tensors, typically
        ``(batch, channels, height, width)``. ``curr_timestep`` is passed to
        branches that use it (time-varying batch norm).
        """
        if residual is None:
            raise ValueError(
                "ResidualAdd needs the node's harbor output as residual, so set \"residual\": true on the node"
            )

        feedforward_out = call_memory_op(self.feedforward, self._feedforward_takes_timestep, x, curr_timestep)
        residual_out = call_memory_op(self.residual, self._residual_takes_timestep, residual, curr_timestep)
        if feedforward_out.shape != residual_out.shape:
            raise ValueError(
                f"ResidualAdd branches give different shapes: feedforward {tuple(feedforward_out.shape)}, "
                f"residual {tuple(residual_out.shape)}"
            )

        return self.activation(feedforward_out + residual_out)
