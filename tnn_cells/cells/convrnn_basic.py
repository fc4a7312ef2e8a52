"""The basic convolutional RNN cell: separate convolutions of input and state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_cells.cells._common import build_conv, check_channels, check_size_preserved, check_state_shape
from tnn_core.layers import make_activation

__all__ = ["ConvRNNBasicCell"]


class ConvRNNBasicCell(nn.Module):
    r"""A convolutional Elman RNN: convolve input and state separately, add, apply the activation.

    .. math::

        h_t = \phi\left(W_x * x_t + b_x + W_h * h_{t-1} + b_h\right),
        \qquad y_t = h_t, \qquad h_{-1} = 0

    where :math:`*` is 2-D convolution (``conv_input`` and ``conv_state``) and
    :math:`\phi` the activation. This is the simple recurrent network of
    Elman (1990) with convolutions in place of matrix products, as in
    PyTorchTNN's ``ConvRNNBasicCell``. It is the only built-in cell whose
    input and output channel counts may differ.

    The zero state at the first step has ``(batch, out_channels, *state_shape)``
    with the input's dtype and device; without ``state_shape`` its spatial size
    is that of ``conv_input``'s output. ``conv_state`` must keep that size, so
    use stride 1 and ``padding = (ksize - 1) // 2`` for odd ``ksize``. The
    default ``padding=0`` with the default 3x3 kernel does not keep it, and
    ``forward`` raises ``ValueError`` at the first step.

    Args:
        input_in_channels: channels of the input, provided by the graph. Required.
        out_channels: channels of the output and the state. Required.
        state_shape: ``(height, width)`` of the state. Default: ``None`` (from
            ``conv_input``'s output).
        activation: ``torch.nn`` class name of :math:`\phi`, or ``None`` for
            the identity. Default: ``"ReLU"``.
        ksize: kernel size of both convolutions, an int or ``(height, width)``.
            Default: ``(3, 3)``.
        stride: stride of both convolutions. Default: ``1``.
        padding: padding of both convolutions: an int, a pair, ``"same"`` or
            ``"valid"``. Default: ``0``.
        activation_func_kwargs: keyword arguments of the activation class.
            Default: ``None`` (none).

    Shapes:
        Input: ``(batch, input_in_channels, height, width)``.
        Output and state: ``(batch, out_channels, height', width')``, the
        size of ``conv_input``'s output.
    """

    def __init__(
        self,
        input_in_channels: int | None = None,
        out_channels: int | None = None,
        state_shape: Sequence[int] | None = None,
        activation: str | None = "ReLU",
        ksize: int | Sequence[int] = (3, 3),
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        activation_func_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.input_in_channels = check_channels("input_in_channels", input_in_channels)
        self.out_channels = check_channels("out_channels", out_channels)
        self.state_shape = check_state_shape(state_shape)

        self.conv_input = build_conv(input_in_channels, out_channels, ksize, stride=stride, padding=padding)
        self.conv_state = build_conv(out_channels, out_channels, ksize, stride=stride, padding=padding)

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        input_term = self.conv_input(inputs)

        if state is None:
            spatial = self.state_shape if self.state_shape is not None else tuple(input_term.shape[2:])
            state = inputs.new_zeros((inputs.shape[0], self.out_channels, *spatial))

        state_term = self.conv_state(state)
        check_size_preserved(state_term, state, "conv_state")
        check_size_preserved(
            input_term,
            state,
            "conv_input",
            fix=f"set state_shape to {list(input_term.shape[2:])} or leave it unset to take conv_input's output size",
        )

        new_state = self.activation(input_term + state_term)
        return new_state, new_state
