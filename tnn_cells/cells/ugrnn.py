"""The convolutional update-gate RNN (UGRNN) cell."""

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

__all__ = ["UGRNNCell"]


class UGRNNCell(nn.Module):
    r"""A convolutional update-gate RNN: one gate blends the old state with a tanh candidate.

    .. math::

        [\tilde g_t, \tilde c_t] &= W * [x_t, h_{t-1}] + b \\
        g_t &= \sigma\left(\mathrm{LN}_g(\tilde g_t) + b_f\right) \\
        c_t &= \tanh\left(\mathrm{LN}_c(\tilde c_t)\right) \\
        h_t &= g_t \odot h_{t-1} + (1 - g_t) \odot c_t, \qquad y_t = h_t, \qquad h_{-1} = 0

    where :math:`[\cdot,\cdot]` concatenates channels, :math:`*` is the 2-D
    convolution ``conv`` (its output split in half along channels, gate
    first), :math:`b_f` is ``forget_bias`` and :math:`\mathrm{LN}` the layer
    norms ``ln_g_act`` and ``ln_c_act`` (identities when ``layernorm=False``).
    The UGRNN is from Collins, Sohl-Dickstein & Sussillo 2017, "Capacity and
    trainability in recurrent neural networks" (ICLR); this is the
    convolutional form of the convrnns models as PyTorchTNN ports it.

    The layer norms normalize over channels separately at every pixel, as
    PyTorchTNN does; the TF convrnns cell normalizes over channels and space
    together. The state has the input's shape, so ``out_channels`` must equal
    ``input_in_channels`` and ``conv`` must keep the spatial size.

    Args:
        input_in_channels: channels of the input, provided by the graph. Required.
        out_channels: channels of the output and the state; must equal
            ``input_in_channels``. Required.
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
        layernorm: whether to apply the two layer norms. Default: ``False``.
        state_shape: accepted for config compatibility with PyTorchTNN, unused,
            because the state takes the input's shape. Default: ``None``.
        forget_bias: :math:`b_f`, added to the gate before the sigmoid, so
            larger values keep more of the old state. Default: ``1.0``.

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
            2 * out_channels,
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
            self.ln_g_act = ChannelLayerNorm(out_channels)
            self.ln_c_act = ChannelLayerNorm(out_channels)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = torch.zeros_like(inputs)

        pre_activations = self.conv(torch.cat([inputs, state], dim=1))
        check_size_preserved(pre_activations, state, "conv")
        g_act, c_act = torch.tensor_split(pre_activations, 2, dim=1)
        if self.layernorm:
            g_act = self.ln_g_act(g_act)
            c_act = self.ln_c_act(c_act)

        gate = torch.sigmoid(g_act + self.forget_bias)
        candidate = torch.tanh(c_act)
        new_state = gate * state + (1.0 - gate) * candidate
        return new_state, new_state
