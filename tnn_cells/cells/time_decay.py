"""The time-decay cell: a leaky integrator with one learnable decay factor."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_cells.cells._common import check_channels, check_flag, check_number, check_state_shape
from tnn_core.layers import init_weight

__all__ = ["TimeDecayRecurrentCell"]


class TimeDecayRecurrentCell(nn.Module):
    r"""A leaky integrator: the state decays by a scalar factor and adds the new input.

    .. math::

        s_t = x_t + \tau \, s_{t-1}, \qquad y_t = s_t, \qquad s_{-1} = 0

    :math:`\tau` is one scalar shared by all channels and pixels. This is the
    time-decay recurrence of the convrnns work (Nayebi et al. 2018, "Task-driven
    convolutional recurrent models of the visual system", NeurIPS), as
    PyTorchTNN implements it: :math:`\tau` is used as given, with no sigmoid or
    clipping, so :math:`|\tau| > 1` makes the state grow.

    Args:
        state_shape: accepted for config compatibility with PyTorchTNN, unused,
            because the state always has the input's shape. Default: ``None``.
        input_in_channels: channels of the input, provided by the graph.
            Default: ``None`` (unknown).
        init_dict: ``{"method": <torch.nn.init function name>, **kwargs}`` applied
            to :math:`\tau` after it is set from ``tau`` (only methods that accept
            a 0-d tensor work, e.g. ``constant_``, ``uniform_``, ``normal_``).
            Not modified. Default: ``None``.
        tau: initial decay factor. Default: ``0.0``.
        trainable: whether :math:`\tau` gets gradients. It is a parameter (and
            in the state dict as ``tau``, shape ``()``) either way. Default: ``True``.

    Shapes:
        Input: any shape, e.g. ``(batch, channels, height, width)`` or
        ``(batch, features)``. Output and state: the input's shape.
    """

    def __init__(
        self,
        state_shape: Sequence[int] | None = None,
        input_in_channels: int | None = None,
        init_dict: Mapping[str, Any] | None = None,
        tau: float = 0.0,
        trainable: bool = True,
    ) -> None:
        super().__init__()
        if input_in_channels is not None:
            check_channels("input_in_channels", input_in_channels)
        tau = check_number("tau", tau)
        check_flag("trainable", trainable)

        self.state_shape = check_state_shape(state_shape)
        self.input_in_channels = input_in_channels
        self.out_channels = input_in_channels

        self.tau = nn.Parameter(torch.tensor(tau), requires_grad=trainable)
        try:
            init_weight(self.tau, init_dict)
        except ValueError as exc:
            raise ValueError(f"init_dict {dict(init_dict or {})!r} cannot initialise the scalar tau: {exc}") from exc

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = torch.zeros_like(inputs)
        new_state = inputs + self.tau * state
        return new_state, new_state
