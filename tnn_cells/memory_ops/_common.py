"""Argument checks and helpers shared by the built-in memory ops."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.building import build_component
from tnn_core.layers import TimeVaryingNorm
from tnn_core.node import declared_forward_arguments
from tnn_core.shapes import infer_output_shape, meta_tensor

logger = logging.getLogger(__name__)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` if it is an integer >= 1, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_pair(name: str, value: Any, minimum: int) -> tuple[int, int]:
    """Return ``value``, one int or a sequence of two ints >= ``minimum``, as ``(height, width)``."""
    if isinstance(value, (list, tuple)) and len(value) == 2:
        items = tuple(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        items = (value, value)
    else:
        raise ValueError(f"{name} must be an integer or a pair [height, width] of integers, got {value!r}")

    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or item < minimum:
            raise ValueError(f"{name} must contain integers >= {minimum}, got {value!r}")
    return items


def check_dropout(value: Any) -> float:
    """Return the dropout probability ``value`` if it lies in ``[0, 1]``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"dropout must be a probability between 0 and 1, got {value!r}")
    return float(value)


def check_bias_arguments(use_bias: bool, bias: float | None) -> None:
    """Reject a constant ``bias`` value for a layer built without a bias term."""
    if not use_bias and bias is not None:
        raise ValueError(f"bias={bias!r} sets the initial bias value, but use_bias is false. Remove bias or set use_bias to true")


def make_batchnorm(
    make_norm: Callable[[], nn.Module],
    batchnorm: int | None,
    out_channels: int,
    batchnorm_timevary: bool,
    num_timesteps: int | None,
) -> tuple[str, nn.Module]:
    """Return the attribute name (``bn`` or ``bns``) and module of an op's batch norm.

    ``batchnorm`` is PyTorchTNN's argument: the number of normalised channels,
    which must equal ``out_channels``, or ``None`` for no batch norm. Without
    batch norm the op gets an ``nn.Identity`` named ``bn`` (no state-dict keys),
    also when ``batchnorm_timevary`` is set.
    """
    if batchnorm is None:
        if batchnorm_timevary:
            logger.warning("batchnorm_timevary is set but batchnorm is None, so the op has no batch norm")
        return "bn", nn.Identity()

    if isinstance(batchnorm, bool) or not isinstance(batchnorm, int) or batchnorm != out_channels:
        raise ValueError(
            f"batchnorm must be the number of output channels ({out_channels}) or None, got {batchnorm!r}"
        )
    if batchnorm_timevary:
        return "bns", TimeVaryingNorm(make_norm, num_timesteps)
    return "bn", make_norm()


def accepts_keyword(module: nn.Module, name: str) -> bool:
    """Return whether ``module.forward`` declares a parameter ``name`` or takes ``**kwargs``."""
    parameters = inspect.signature(module.forward).parameters
    if name in parameters:
        return True
    return any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def call_memory_op(op: nn.Module, takes_timestep: bool, x: torch.Tensor, curr_timestep: int | None) -> torch.Tensor:
    """Run a nested memory op, passing ``curr_timestep`` only when its ``forward`` declares it."""
    if takes_timestep:
        return op(x, curr_timestep=curr_timestep)
    return op(x)


def build_memory_op(
    spec: Any,
    where: str,
    input_shape: Sequence[int] | None,
    num_timesteps: int | None,
    in_channels: int | None = None,
    residual_shape: Sequence[int] | None = None,
) -> nn.Module:
    """Build a nested memory-op spec for an input of shape ``input_shape`` (without the batch dimension).

    ``in_channels`` defaults to ``input_shape[0]``. The framework arguments
    are passed only where they are known, so a spec that sets
    ``in_channels`` itself still builds when the shape is unknown.
    """
    provided: dict[str, Any] = {}
    if input_shape is not None:
        provided["input_shape"] = tuple(input_shape)
        provided["in_channels"] = int(input_shape[0])
    if in_channels is not None:
        provided["in_channels"] = in_channels
    if num_timesteps is not None:
        provided["num_timesteps"] = num_timesteps
    if residual_shape is not None:
        provided["residual_shape"] = tuple(residual_shape)
    return build_component("memory_op", spec, where=where, provided=provided)


def infer_memory_op_shape(
    op: nn.Module,
    input_shape: Sequence[int],
    takes_timestep: bool,
    residual_shape: Sequence[int] | None = None,
) -> tuple[int, ...]:
    """Return the output shape of ``op`` (without the batch dimension) for an input of ``input_shape``.

    Runs on the ``meta`` device at time step 0, so no parameters, statistics
    or random state change. ``residual_shape`` is the shape of the residual
    input, for ops whose ``forward`` declares ``residual``.
    """
    kwargs: dict[str, Any] = {"curr_timestep": 0} if takes_timestep else {}
    if residual_shape is not None and "residual" in declared_forward_arguments(op):
        kwargs["residual"] = meta_tensor(tuple(residual_shape))
    return tuple(infer_output_shape(op, meta_tensor(tuple(input_shape)), **kwargs))
