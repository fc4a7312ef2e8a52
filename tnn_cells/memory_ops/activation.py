"""A memory op that applies one ``torch.nn`` activation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from tnn_core.layers import make_activation

__all__ = ["ActivationLayer"]


class ActivationLayer(nn.Module):
    """Apply an activation element-wise, ``(batch, ...) -> (batch, ...)``.

    Args:
        activation: ``torch.nn`` activation class name. Default ``"ReLU"``
            (PyTorchTNN's default).
        activation_func_kwargs: keyword arguments of the activation class,
            e.g. ``{"negative_slope": 0.1}`` for ``"LeakyReLU"``. Default None
            (no arguments).
    """

    def __init__(self, activation: str = "ReLU", activation_func_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__()

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        """Apply the activation to ``x``. ``curr_timestep`` is unused."""
        return self.activation(x)
