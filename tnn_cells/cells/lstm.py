"""The convolutional LSTM cell."""

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
    check_number,
    check_same_channels,
    check_size_preserved,
    check_state_shape,
    init_convs,
)
from tnn_core.layers import make_activation

__all__ = ["LSTMCell"]


class LSTMCell(nn.Module):
    r"""A convolutional long short-term memory (ConvLSTM) cell, without peepholes.

    .. math::

        [\tilde i_t, \tilde j_t, \tilde f_t, \tilde o_t] &= W * [x_t, h_{t-1}] + b \\
        c_t &= \mathrm{LN}_s\left(c_{t-1} \odot \sigma\left(\mathrm{LN}_f(\tilde f_t) + b_f\right)
               + \sigma\left(\mathrm{LN}_i(\tilde i_t)\right) \odot \phi\left(\mathrm{LN}_j(\tilde j_t)\right)\right) \\
        h_t &= \phi(c_t) \odot \sigma\left(\mathrm{LN}_o(\tilde o_t)\right), \qquad y_t = h_t,
        \qquad c_{-1} = h_{-1} = 0

    where :math:`[\cdot,\cdot]` concatenates channels and :math:`*` is the
    2-D convolution ``conv``. Its output is split in four along channels: input
    gate, candidate, forget gate and output gate, in that order. :math:`b_f` is
    ``forget_bias``, :math:`\phi` the activation and :math:`\mathrm{LN}` the
    layer norms ``ln_input``, ``ln_transform``, ``ln_forget``, ``ln_output``
    and ``ln_state`` (identities when ``layernorm=False``). The LSTM is from
    Hochreiter & Schmidhuber 1997, its convolutional form from Shi et al. 2015,
    "Convolutional LSTM network: a machine learning approach for precipitation
    nowcasting"; this follows the convrnns port in PyTorchTNN.

    The state is ``[c, h]`` concatenated along channels, ``(batch,
    2 * out_channels, height, width)``, with the cell state :math:`c` first;
    the output is :math:`h` alone. The layer norms normalize over channels
    separately at every pixel, as PyTorchTNN does; the TF convrnns cell
    normalizes over channels and space together. The zero state is built with
    the input's channel count, so ``out_channels`` must equal
    ``input_in_channels``, and ``conv`` must keep the spatial size.

    Args:
        input_in_channels: channels of the input, provided by the graph. Required.
        out_channels: channels of the output, and of each half of the state;
            must equal ``input_in_channels``. Required.
        ksize: kernel size of the convolution, an int or ``(height, width)``. Required.
        stride: stride of the convolution. Default: ``1``.
        padding: padding of the convolution: an int, a pair, ``"same"`` or
            ``"valid"``. Default: ``"same"``.
        dilation: dilation of the convolution. Default: ``1``.
        groups: groups of the convolution. Default: ``1``.
        use_bias: whether the convolution has a bias. Default: ``True``.
        bias: value the conv bias starts at, or ``None`` for PyTorch's default
            initialisation. Default: ``None``.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
            ``"circular"``. Default: ``"zeros"``.
        init_dict: ``{"method": <torch.nn.init function name>, **kwargs}`` applied
            to the conv weight; not modified. Default: ``None`` (PyTorch's default).
        layernorm: whether to apply the five layer norms. Default: ``False``.
        state_shape: accepted for config compatibility with PyTorchTNN, unused,
            because the state takes the input's spatial shape. Default: ``None``.
        activation: ``torch.nn`` class name of :math:`\phi`, or ``None`` for
            the identity. Default: ``"Tanh"``.
        activation_func_kwargs: keyword arguments of the activation class.
            Default: ``None`` (none).
        forget_bias: :math:`b_f`, added to the forget gate before the sigmoid.
            Default: ``1.0``.

    Shapes:
        Input and output: ``(batch, channels, height, width)``.
        State: ``(batch, 2 * channels, height, width)``.
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
        layernorm: bool = False,
        state_shape: Sequence[int] | None = None,
        activation: str | None = "Tanh",
        activation_func_kwargs: Mapping[str, Any] | None = None,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__()
        self.input_in_channels = check_channels("input_in_channels", input_in_channels)
        self.out_channels = check_channels("out_channels", out_channels)
        check_same_channels(type(self).__name__, input_in_channels, out_channels)
        self.state_shape = check_state_shape(state_shape)
        self.forget_bias = check_number("forget_bias", forget_bias)

        self.conv = build_conv(
            2 * input_in_channels,
            4 * out_channels,
            ksize=ksize,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            use_bias=use_bias,
            padding_mode=padding_mode,
        )
        init_convs([self.conv], init_dict, bias)

        self.layernorm = check_flag("layernorm", layernorm)
        if layernorm:
            self.ln_input = ChannelLayerNorm(out_channels)
            self.ln_transform = ChannelLayerNorm(out_channels)
            self.ln_forget = ChannelLayerNorm(out_channels)
            self.ln_output = ChannelLayerNorm(out_channels)
            self.ln_state = ChannelLayerNorm(out_channels)

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = inputs.new_zeros((inputs.shape[0], 2 * inputs.shape[1], *inputs.shape[2:]))
        cell, hidden = torch.tensor_split(state, 2, dim=1)

        gates = self.conv(torch.cat([inputs, hidden], dim=1))
        check_size_preserved(gates, state, "conv")
        input_gate, transform, forget_gate, output_gate = torch.tensor_split(gates, 4, dim=1)
        if self.layernorm:
            input_gate = self.ln_input(input_gate)
            transform = self.ln_transform(transform)
            forget_gate = self.ln_forget(forget_gate)
            output_gate = self.ln_output(output_gate)

        forget_term = cell * torch.sigmoid(forget_gate + self.forget_bias)
        input_term = torch.sigmoid(input_gate) * self.activation(transform)
        new_cell = forget_term + input_term
        if self.layernorm:
            new_cell = self.ln_state(new_cell)

        new_hidden = self.activation(new_cell) * torch.sigmoid(output_gate)
        return new_hidden, torch.cat([new_cell, new_hidden], dim=1)
