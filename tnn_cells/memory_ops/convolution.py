"""2-D convolution memory op: dropout -> conv -> batch norm -> activation."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.layers import init_bias, init_weight, make_activation

from ._common import check_bias_arguments, check_dropout, check_pair, check_positive_int, make_batchnorm

logger = logging.getLogger(__name__)

__all__ = ["Conv2dCell"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
_PADDING_NAMES = ("same", "valid")


class Conv2dCell(nn.Module):
    """Dropout, then ``nn.Conv2d``, then optional batch norm, then an optional activation.

    Maps ``(batch, in_channels, height, width)`` to
    ``(batch, out_channels, out_height, out_width)`` with the usual
    ``nn.Conv2d`` output size. Usable as pre- or post-memory op. Parameter
    names follow PyTorchTNN, so its state dicts load: ``conv.weight``,
    ``conv.bias``, ``bn.*`` or, with time-varying batch norm, ``bns.<t>.*``.

    Args:
        in_channels: input channels, provided by the graph.
        out_channels: output channels.
        ksize: kernel size, one int or ``[height, width]``. Required.
        stride: convolution stride, int or pair. Default 1.
        padding: int or pair of zero-padding sizes, or ``"same"``/``"valid"``.
            Default 0. ``"same"`` needs stride 1.
        dilation: kernel dilation, int or pair. Default 1.
        groups: number of blocked connections from input to output
            channels, which must divide both channel counts. Default 1.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or
            ``"circular"``. Default ``"zeros"``.
        use_bias: whether the convolution has a bias term. Default True.
        bias: constant initial value of every bias entry. ``None`` keeps
            PyTorch's default initialisation. Needs ``use_bias``. Default None.
        init_dict: weight initialisation ``{"method": <torch.nn.init function
            name>, **kwargs}``, e.g. ``{"method": "kaiming_normal_",
            "nonlinearity": "relu"}``. It is never modified. Default None (PyTorch's
            default initialisation).
        dropout: probability of zeroing an input element, applied in training
            mode only. Default 0.
        batchnorm: number of batch-norm channels, which must equal
            ``out_channels``, or ``None`` for no batch norm. Default None.
        batchnorm_timevary: keep one ``BatchNorm2d`` per time step (selected
            by ``curr_timestep``) instead of one shared. Needs
            ``num_timesteps``. Default False.
        activation: ``torch.nn`` activation class name such as ``"ReLU"``, or
            ``None`` for none. Default None.
        activation_func_kwargs: keyword arguments of the activation class.
            Default None (no arguments).
        num_timesteps: the graph's number of time steps, provided by the graph.
            Sizes time-varying batch norm. Default None.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        ksize: int | Sequence[int],
        stride: int | Sequence[int] = 1,
        padding: int | Sequence[int] | str = 0,
        dilation: int | Sequence[int] = 1,
        groups: int = 1,
        padding_mode: str = "zeros",
        use_bias: bool = True,
        bias: float | None = None,
        init_dict: Mapping[str, Any] | None = None,
        dropout: float = 0.0,
        batchnorm: int | None = None,
        batchnorm_timevary: bool = False,
        activation: str | None = None,
        activation_func_kwargs: Mapping[str, Any] | None = None,
        num_timesteps: int | None = None,
    ) -> None:
        super().__init__()

        self.in_channels = check_positive_int("in_channels", in_channels)
        self.out_channels = check_positive_int("out_channels", out_channels)
        kernel_size = check_pair("ksize", ksize, minimum=1)
        stride_pair = check_pair("stride", stride, minimum=1)
        dilation_pair = check_pair("dilation", dilation, minimum=1)
        padding_value = _check_padding(padding, stride_pair)
        _check_groups(groups, in_channels, out_channels)
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"invalid padding_mode {padding_mode!r}. Valid modes: {', '.join(_PADDING_MODES)}")
        check_bias_arguments(use_bias, bias)

        dropout_probability = check_dropout(dropout)
        self.dropout = nn.Dropout(p=dropout_probability) if dropout_probability > 0 else nn.Identity()

        self.conv = nn.Conv2d(
            in_channels=in_channels,
            out_channels=out_channels,
            kernel_size=kernel_size,
            stride=stride_pair,
            padding=padding_value,
            dilation=dilation_pair,
            groups=groups,
            bias=use_bias,
            padding_mode=padding_mode,
        )
        init_weight(self.conv.weight, init_dict)
        init_bias(self.conv.bias, bias)

        self.batchnorm_timevary = batchnorm_timevary and batchnorm is not None
        norm_name, norm = make_batchnorm(
            lambda: nn.BatchNorm2d(out_channels), batchnorm, out_channels, batchnorm_timevary, num_timesteps
        )
        setattr(self, norm_name, norm)

        self.activation = make_activation(activation, activation_func_kwargs)

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        """Convolve ``x`` of shape ``(batch, in_channels, height, width)``.

        ``curr_timestep`` selects the batch norm when it is time-varying and
        is ignored otherwise.
        """
        output = self.conv(self.dropout(x))

        if self.batchnorm_timevary:
            output = self.bns(output, curr_timestep)
        else:
            output = self.bn(output)

        return self.activation(output)


def _check_padding(padding: Any, stride: tuple[int, int]) -> int | tuple[int, int] | str:
    """Return ``padding`` in the form ``nn.Conv2d`` takes, or raise ``ValueError``."""
    if isinstance(padding, str):
        if padding not in _PADDING_NAMES:
            raise ValueError(
                f"invalid padding {padding!r}. Use an integer, a pair [height, width] or one of "
                f"{', '.join(repr(name) for name in _PADDING_NAMES)}"
            )
        if padding == "same" and stride != (1, 1):
            raise ValueError(f"padding 'same' needs stride 1, got stride {list(stride)}. Give the padding as integers")
        return padding
    return check_pair("padding", padding, minimum=0)


def _check_groups(groups: Any, in_channels: int, out_channels: int) -> None:
    check_positive_int("groups", groups)
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups={groups} must divide both in_channels ({in_channels}) and out_channels ({out_channels})"
        )
