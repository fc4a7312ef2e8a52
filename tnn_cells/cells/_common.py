"""Pieces shared by the built-in recurrent cells: argument checks, the
convolution builder, a per-pixel channel layer norm and shape checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from tnn_core.layers import init_bias, init_weight

__all__ = [
    "ChannelLayerNorm",
    "PADDING_MODES",
    "build_conv",
    "check_channels",
    "check_flag",
    "check_number",
    "check_same_channels",
    "check_size_preserved",
    "check_state_shape",
    "init_convs",
]

#: Values ``torch.nn.Conv2d`` accepts for ``padding_mode``.
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")

#: Values ``torch.nn.Conv2d`` accepts for a string ``padding``.
PADDING_STRINGS = ("same", "valid")


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channel dimension, separately at every pixel.

    Takes ``(batch, channels, height, width)`` (or ``(batch, channels)``) and
    normalizes each ``(batch, :, h, w)`` vector, which is what PyTorchTNN's
    cells do by applying ``nn.LayerNorm(channels)`` to channels-last tensors.
    The TF convrnns cells call ``tf.contrib.layers.layer_norm`` with its default
    ``begin_norm_axis=1``, so they normalize over channels and space together instead.
    The parameters are ``weight`` and ``bias`` of shape ``(channels,)``, as in
    ``nn.LayerNorm``, so PyTorchTNN state dicts load unchanged.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.movedim(1, -1)).movedim(-1, 1)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_channels(name: str, value: Any) -> int:
    """Return ``value`` if it is a positive int, else raise ``ValueError`` naming ``name``."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_flag(name: str, value: Any) -> bool:
    """Return ``value`` if it is a bool, else raise ``ValueError`` naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def check_number(name: str, value: Any) -> float:
    """Return ``value`` as a float if it is an int or float, else raise ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    return float(value)


def check_same_channels(cell_name: str, input_in_channels: int, out_channels: int) -> None:
    """Raise ``ValueError`` unless a cell whose state has its input's shape gets ``in == out`` channels."""
    if input_in_channels != out_channels:
        raise ValueError(
            f"input_in_channels ({input_in_channels}) differs from out_channels ({out_channels}), but "
            f"{cell_name} mixes its input and its state element-wise, so both need the same number of "
            f"channels: set out_channels to {input_in_channels}, or make the pre-memory op output "
            f"{out_channels} channels"
        )


def _to_pair(name: str, value: Any, minimum: int) -> tuple[int, int]:
    """Turn an int or a 2-sequence of ints (each at least ``minimum``) into a ``(height, width)`` pair."""
    if _is_int(value):
        pair = (value, value)
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        pair = tuple(value)
    else:
        pair = None
    if pair is None or not all(_is_int(v) and v >= minimum for v in pair):
        kind = "positive integer" if minimum == 1 else "non-negative integer"
        raise ValueError(f"{name} must be a {kind} or a pair of them (height, width), got {value!r}")
    return pair


def check_state_shape(state_shape: Any) -> tuple[int, int] | None:
    """Return ``state_shape`` as ``(height, width)``, or ``None`` when it is ``None``."""
    if state_shape is None:
        return None
    if not (isinstance(state_shape, Sequence) and not isinstance(state_shape, str) and len(state_shape) == 2):
        raise ValueError(f"state_shape must be (height, width) or None, got {state_shape!r}")
    return _to_pair("state_shape", state_shape, minimum=1)


def _check_padding(padding: Any, stride: tuple[int, int]) -> str | tuple[int, int]:
    if isinstance(padding, str):
        if padding not in PADDING_STRINGS:
            raise ValueError(
                f"padding must be 'same', 'valid', a non-negative integer or a pair of them, got {padding!r}"
            )
        if padding == "same" and stride != (1, 1):
            raise ValueError(
                f"padding 'same' needs stride 1 (torch.nn.Conv2d rejects it for strided convolutions), "
                f"got stride {stride}: set stride to 1 or give padding as integers"
            )
        return padding
    return _to_pair("padding", padding, minimum=0)


def build_conv(
    in_channels: int,
    out_channels: int,
    ksize: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: Any = 1,
    use_bias: bool = True,
    padding_mode: str = "zeros",
) -> nn.Conv2d:
    """Check the convolution arguments a config gives and build the ``nn.Conv2d``.

    Raises ``ValueError`` with the value and the valid choices for each
    invalid argument, before building the ``nn.Conv2d``.
    """
    kernel_size = _to_pair("ksize", ksize, minimum=1)
    stride_pair = _to_pair("stride", stride, minimum=1)
    dilation_pair = _to_pair("dilation", dilation, minimum=1)
    padding_value = _check_padding(padding, stride_pair)

    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {', '.join(PADDING_MODES)}, got {padding_mode!r}")
    check_flag("use_bias", use_bias)

    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive integer, got {groups!r}")
    if in_channels % groups or out_channels % groups:
        raise ValueError(
            f"groups ({groups}) must divide both the convolution's input channels ({in_channels}) "
            f"and output channels ({out_channels})"
        )

    return nn.Conv2d(
        in_channels,
        out_channels,
        kernel_size=kernel_size,
        stride=stride_pair,
        padding=padding_value,
        dilation=dilation_pair,
        groups=groups,
        bias=use_bias,
        padding_mode=padding_mode,
    )


def init_convs(convs: Iterable[nn.Conv2d], init_dict: Mapping[str, Any] | None, bias: float | None) -> None:
    """Initialise each conv's weight from ``init_dict`` and fill its bias with ``bias``.

    Either may be ``None`` to keep PyTorch's default. ``init_dict`` is not modified.
    """
    for conv in convs:
        init_weight(conv.weight, init_dict)
        init_bias(conv.bias, bias)


def check_size_preserved(conv_output: torch.Tensor, state: torch.Tensor, conv_name: str, fix: str | None = None) -> None:
    """Raise ``ValueError`` unless ``conv_output`` has the spatial size of ``state``.

    A recurrent cell feeds its new state back in at the next step, so every
    convolution must keep the state's height and width. ``fix`` replaces the
    default advice in the message.
    """
    if conv_output.shape[2:] == state.shape[2:]:
        return
    if fix is None:
        fix = "use stride 1 and padding 'same' (or padding (ksize - 1) // 2 for odd ksize)"
    raise ValueError(
        f"{conv_name} outputs spatial size {tuple(conv_output.shape[2:])} but the state has "
        f"{tuple(state.shape[2:])}, and the new state must keep the state's size from step to step: {fix}"
    )
