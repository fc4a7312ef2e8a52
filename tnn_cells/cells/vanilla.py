"""The vanilla convolutional RNN cell of the convrnns model family."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_cells.cells._common import (
    ChannelLayerNorm,
    build_conv,
    check_channels,
    check_flag,
    check_same_channels,
    check_size_preserved,
    check_state_shape,
    init_convs,
)
from tnn_core.layers import make_activation

__all__ = ["VanillaRNNCell"]


class VanillaRNNCell(nn.Module):
    r"""A convolutional Elman RNN with an optional per-pixel layer norm before the activation.

    .. math::

        h_t = \phi\left(\mathrm{LN}\left(W_x * x_t + b_x + W_h * h_{t-1} + b_h\right)\right),
        \qquad y_t = h_t, \qquad h_{-1} = 0

    where :math:`*` is 2-D convolution (``conv_input`` and ``conv_state``),
    :math:`\mathrm{LN}` the layer norm ``ln`` (the identity when
    ``layernorm=False``) and :math:`\phi` the activation. This is the simple
    recurrent network of Elman (1990), in the convolutional form of the
    convrnns models (Nayebi et al. 2018, "Task-driven convolutional recurrent
    models of the visual system") as PyTorchTNN ports it.

    The layer norm normalizes over channels separately at every pixel, as
    PyTorchTNN does; the TF convrnns cell normalizes over channels and space
    together. The state has the input's shape, so ``out_channels`` must equal
    ``input_in_channels`` and the convolutions must keep the spatial size.

    Args:
        input_in_channels: channels of the input, provided by the graph. Required.
        out_channels: channels of the output and the state; must equal
            ``input_in_channels``. Required.
        ksize: kernel size of both convolutions, an int or ``(height, width)``. Required.
        stride: stride of both convolutions. Default: ``1``.
        padding: padding of both convolutions: an int, a pair, ``"same"`` or
            ``"valid"``. Default: ``"same"``.
        dilation: dilation of both convolutions. Default: ``1``.
        groups: groups of both convolutions. Default: ``1``.
        use_bias: whether the convolutions have biases. Default: ``True``.
        bias: value every conv bias starts at, or ``None`` for PyTorch's
            default initialisation. Default: ``None``.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
            ``"circular"``. Default: ``"zeros"``.
        init_dict: ``{"method": <torch.nn.init function name>, **kwargs}`` applied
            to both conv weights; not modified. Default: ``None`` (PyTorch's default).
        layernorm: whether to apply the layer norm ``ln``. Default: ``True``.
        state_shape: accepted for config compatibility with PyTorchTNN, unused,
            because the state takes the input's shape. Default: ``None``.
        activation: ``torch.nn`` class name of :math:`\phi`, or ``None`` for
            the identity. Default: ``"ELU"``.
        activation_func_kwargs: keyword arguments of the activation class.
            Default: ``None`` (none).

    Shapes:
        Input, output and state: ``(batch, channels, height, width)``.
    """

    def __init__(
        self,
        input_in_channels: int,
        out_channels: int,
        ksize: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = "same",
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        use_bias: bool = True,
        bias: float | None = None,
        padding_mode: str = "zeros",
        init_dict: Mapping[str, Any] | None = None,
        layernorm: bool = True,
        state_shape: Sequence[int] | None = None,
        activation: str | None = "ELU",
        activation_func_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.input_in_channels = check_channels("input_in_channels", input_in_channels)
        self.out_channels = check_channels("out_channels", out_channels)
        check_same_channels(type(self).__name__, input_in_channels, out_channels)
        self.state_shape = check_state_shape(state_shape)

        conv_options = dict(
            ksize=ksize,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            use_bias=use_bias,
            padding_mode=padding_mode,
        )
        self.conv_input = build_conv(input_in_channels, out_channels, **conv_options)
        self.conv_state = build_conv(out_channels, out_channels, **conv_options)
        init_convs([self.conv_input, self.conv_state], init_dict, bias)

        self.layernorm = check_flag("layernorm", layernorm)
        if layernorm:
            self.ln = ChannelLayerNorm(out_channels)

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = torch.zeros_like(inputs)

        input_term = self.conv_input(inputs)
        state_term = self.conv_state(state)
        check_size_preserved(input_term, state, "conv_input")
        check_size_preserved(state_term, state, "conv_state")

        new_state = input_term + state_term
        if self.layernorm:
            new_state = self.ln(new_state)
        new_state = self.activation(new_state)
        return new_state, new_state
