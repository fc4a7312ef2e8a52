"""Pooling memory ops: max pooling and adaptive average pooling."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ._common import check_pair

__all__ = ["MaxPool", "AdaptiveAvgPool"]


class MaxPool(nn.Module):
    """2-D max pooling, ``(batch, channels, height, width) -> (batch, channels, out_height, out_width)``.

    Args:
        ksize: pooling window, one int or ``[height, width]``. Required.
        stride: window stride, int or pair. ``None`` means ``ksize``. Default None.
        padding: implicit negative-infinity padding on each side, int or pair,
            at most half the window. Default 0.
        dilation: spacing between window elements, int or pair. Default 1.
        return_indices: accepted for PyTorchTNN configs, but only ``False`` is
            valid because a memory op returns one tensor. Default False.
        ceil_mode: use ceil instead of floor for the output size. Default False.
    """

    def __init__(
        self,
        ksize: int | Sequence[int],
        stride: int | Sequence[int] | None = None,
        padding: int | Sequence[int] = 0,
        dilation: int | Sequence[int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()

        kernel_size = check_pair("ksize", ksize, minimum=1)
        stride_pair = kernel_size if stride is None else check_pair("stride", stride, minimum=1)
        padding_pair = check_pair("padding", padding, minimum=0)
        dilation_pair = check_pair("dilation", dilation, minimum=1)
        if any(2 * pad > size for pad, size in zip(padding_pair, kernel_size)):
            raise ValueError(f"padding {list(padding_pair)} must be at most half of ksize {list(kernel_size)}")
        if return_indices:
            raise ValueError(
                "return_indices=True is not supported because a memory op returns a single tensor. Remove the key"
            )

        self.maxpool = nn.MaxPool2d(
            kernel_size=kernel_size,
            stride=stride_pair,
            padding=padding_pair,
            dilation=dilation_pair,
            ceil_mode=ceil_mode,
        )

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        """Pool ``x`` of shape ``(batch, channels, height, width)``. ``curr_timestep`` is unused."""
        return self.maxpool(x)


class AdaptiveAvgPool(nn.Module):
    """2-D adaptive average pooling to a fixed output size, optionally flattened.

    ``(batch, channels, height, width) -> (batch, channels, *output_size)``, or
    ``(batch, channels * out_height * out_width)`` with ``flatten``.

    Args:
        output_size: output ``[height, width]``, or one int for a square
            output. Default ``(6, 6)`` (PyTorchTNN's default).
        flatten: flatten everything after the batch dimension. Default False.
    """

    def __init__(self, output_size: int | Sequence[int] = (6, 6), flatten: bool = False) -> None:
        super().__init__()

        self.output_size = check_pair("output_size", output_size, minimum=1)
        self.flatten = flatten
        self.avgpool = nn.AdaptiveAvgPool2d(self.output_size)

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        """Pool ``x`` of shape ``(batch, channels, height, width)``. ``curr_timestep`` is unused."""
        output = self.avgpool(x)
        if self.flatten:
            output = torch.flatten(output, start_dim=1)
        return output
