"""The identity cell: a node without recurrence."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from tnn_cells.cells._common import check_channels, check_state_shape

__all__ = ["IdentityCell"]


class IdentityCell(nn.Module):
    r"""A cell that passes its input through unchanged, for nodes without recurrence.

    .. math::

        y_t = x_t, \qquad s_t = s_{t-1}

    The state is returned as it came in, so it stays ``None`` when the graph
    starts from ``None``. The cell has no parameters. It is PyTorchTNN's
    ``IdentityCell`` and is typically used at a graph's output node.

    Args:
        state_shape: accepted for config compatibility with PyTorchTNN and
            stored, but unused. Default: ``None``.
        input_in_channels: channels of the input ``(batch, channels, height,
            width)`` (or ``(batch, features)``), provided by the graph.
            Default: ``None`` (unknown).

    Shapes:
        Output: the input's shape.
    """

    def __init__(self, state_shape: Sequence[int] | None = None, input_in_channels: int | None = None) -> None:
        super().__init__()
        if input_in_channels is not None:
            check_channels("input_in_channels", input_in_channels)
        self.state_shape = check_state_shape(state_shape)
        self.input_in_channels = input_in_channels
        self.out_channels = input_in_channels

    def forward(self, inputs: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        return inputs, state
