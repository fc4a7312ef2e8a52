"""The convolutional GRU cell."""

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

__all__ = ["GRUCell"]


class GRUCell(nn.Module):
    r"""A convolutional gated recurrent unit (GRU).

    .. math::

        [\tilde r_t, \tilde u_t] &= W_{ru} * [x_t, h_{t-1}] + b_{ru} \\
        r_t &= \sigma\left(\mathrm{LN}_r(\tilde r_t) + b_f\right) \\
        u_t &= \sigma\left(\mathrm{LN}_u(\tilde u_t)\right) \\
        c_t &= \phi\left(\mathrm{LN}_c\left(W_c * [x_t, r_t \odot h_{t-1}] + b_c\right)\right) \\
        h_t &= u_t \odot h_{t-1} + (1 - u_t) \odot c_t, \qquad y_t = h_t, \qquad h_{-1} = 0

    where :math:`[\cdot,\cdot]` concatenates channels, :math:`*` is 2-D
    convolution (``conv_ru`` gives both gates, split in half along channels,
    and ``conv_c`` the candidate), :math:`b_f` is ``forget_bias``,
    :math:`\phi` the activation and :math:`\mathrm{LN}` the layer norms
    ``ln_r_pre``, ``ln_u_pre`` and ``ln_c_pre`` (identities when
    ``layernorm=False``). The GRU is from Cho et al. 2014, "Learning phrase
    representations using RNN encoder-decoder for statistical machine
    translation"; this is the convolutional form of the convrnns models as
    PyTorchTNN ports it, where ``forget_bias`` shifts the reset gate
    :math:`r_t` and :math:`u_t` keeps the old state.

    The layer norms normalize over channels separately at every pixel, as
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
        layernorm: whether to apply the three layer norms. Default: ``False``.
        state_shape: accepted for config compatibility with PyTorchTNN, unused,
            because the state takes the input's shape. Default: ``None``.
        activation: ``torch.nn`` class name of :math:`\phi`, or ``None`` for
            the identity. Default: ``"Tanh"``.
        activation_func_kwargs: keyword arguments of the activation class.
            Default: ``None`` (none).
        forget_bias: :math:`b_f`, added to the reset gate before the sigmoid.
            Default: ``1.0``.

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

        conv_options = dict(
            ksize=ksize,
            stride=stride,
            padding=padding,
            dilation=dilation,
            groups=groups,
            use_bias=use_bias,
            padding_mode=padding_mode,
        )
        self.conv_ru = build_conv(2 * input_in_channels, 2 * out_channels, **conv_options)
        self.conv_c = build_conv(2 * out_channels, out_channels, **conv_options)
        init_convs([self.conv_ru, self.conv_c], init_dict, bias)

        self.layernorm = check_flag("layernorm", layernorm)
        if layernorm:
            self.ln_r_pre = ChannelLayerNorm(out_channels)
            self.ln_u_pre = ChannelLayerNorm(out_channels)
            self.ln_c_pre = ChannelLayerNorm(out_channels)

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = torch.zeros_like(inputs)

        gates = self.conv_ru(torch.cat([inputs, state], dim=1))
        check_size_preserved(gates, state, "conv_ru")
        r_pre, u_pre = torch.tensor_split(gates, 2, dim=1)
        if self.layernorm:
            r_pre = self.ln_r_pre(r_pre)
            u_pre = self.ln_u_pre(u_pre)
        reset = torch.sigmoid(r_pre + self.forget_bias)
        update = torch.sigmoid(u_pre)

        c_pre = self.conv_c(torch.cat([inputs, reset * state], dim=1))
        if self.layernorm:
            c_pre = self.ln_c_pre(c_pre)
        candidate = self.activation(c_pre)

        new_state = update * state + (1 - update) * candidate
        return new_state, new_state
