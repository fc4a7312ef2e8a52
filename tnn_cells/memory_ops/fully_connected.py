"""Fully connected memory op: flatten -> dropout -> linear -> batch norm -> activation."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.layers import init_bias, init_weight, make_activation

from ._common import check_bias_arguments, check_dropout, check_positive_int, make_batchnorm

logger = logging.getLogger(__name__)

__all__ = ["FullyConnected"]


class FullyConnected(nn.Module):
    """Flatten the input, then dropout, ``nn.Linear``, optional batch norm and an activation.

    Maps ``(batch, *input_shape)``, e.g. ``(batch, channels, height, width)``
    or ``(batch, features)``, to ``(batch, out_channels)``. The number of input
    features is the product of ``input_shape``, so all parameters exist right
    after construction. Parameter names follow PyTorchTNN: ``lin.weight``,
    ``lin.bias``, ``bn.*`` or, with time-varying batch norm, ``bns.<t>.*``.

    Args:
        input_shape: shape of one input sample without the batch dimension,
            provided by the graph.
        out_channels: number of output features.
        init_dict: weight initialisation ``{"method": <torch.nn.init function
            name>, **kwargs}``. It is never modified. Default None (PyTorch's default
            initialisation).
        use_bias: whether the linear layer has a bias term. Default True.
        bias: constant initial value of every bias entry. ``None`` keeps
            PyTorch's default initialisation. Needs ``use_bias``. Default None.
        dropout: probability of zeroing an input element, applied in training
            mode only. Default 0.
        batchnorm: ``BatchNorm1d`` size, which must equal ``out_channels``, or
            ``None`` for no batch norm. Default None.
        batchnorm_timevary: keep one batch norm per time step instead of one
            shared. Needs ``num_timesteps``. Default False.
        activation: ``torch.nn`` activation class name, or ``None`` for none.
            Default ``"ReLU"``, kept from PyTorchTNN because existing configs
            rely on it. Set ``null`` for a linear readout.
        activation_func_kwargs: keyword arguments of the activation class.
            Default None (no arguments).
        num_timesteps: the graph's number of time steps, provided by the graph.
            Sizes time-varying batch norm. Default None.
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        out_channels: int,
        init_dict: Mapping[str, Any] | None = None,
        use_bias: bool = True,
        bias: float | None = None,
        dropout: float = 0.0,
        batchnorm: int | None = None,
        batchnorm_timevary: bool = False,
        activation: str | None = "ReLU",
        activation_func_kwargs: Mapping[str, Any] | None = None,
        num_timesteps: int | None = None,
    ) -> None:
        super().__init__()

        self.in_features = _flattened_size(input_shape)
        self.out_channels = check_positive_int("out_channels", out_channels)
        check_bias_arguments(use_bias, bias)

        dropout_probability = check_dropout(dropout)
        self.dropout = nn.Dropout(p=dropout_probability) if dropout_probability > 0 else nn.Identity()

        self.lin = nn.Linear(self.in_features, out_channels, bias=use_bias)
        init_weight(self.lin.weight, init_dict)
        init_bias(self.lin.bias, bias)

        self.batchnorm_timevary = batchnorm_timevary and batchnorm is not None
        norm_name, norm = make_batchnorm(
            lambda: nn.BatchNorm1d(out_channels), batchnorm, out_channels, batchnorm_timevary, num_timesteps
        )
        setattr(self, norm_name, norm)

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        """Map ``x`` of shape ``(batch, *input_shape)`` to ``(batch, out_channels)``.

        ``curr_timestep`` selects the batch norm when it is time-varying and
        is ignored otherwise.
        """
        flat = x.reshape(x.shape[0], -1)
        if flat.shape[1] != self.in_features:
            raise ValueError(
                f"FullyConnected was built for {self.in_features} input features but got an input of "
                f"shape {tuple(x.shape)} ({flat.shape[1]} features per sample)"
            )

        output = self.lin(self.dropout(flat))

        if self.batchnorm_timevary:
            output = self.bns(output, curr_timestep)
        else:
            output = self.bn(output)

        return self.activation(output)


def _flattened_size(input_shape: Any) -> int:
    """Return the number of features of one flattened sample of ``input_shape``."""
    if not isinstance(input_shape, (list, tuple)) or not input_shape:
        raise ValueError(f"input_shape must be a non-empty sequence of positive integers, got {input_shape!r}")
    for size in input_shape:
        check_positive_int("input_shape entries", size)
    return math.prod(input_shape)
