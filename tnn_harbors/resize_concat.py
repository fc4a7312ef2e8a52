"""Harbor policy that resizes every input to the node's spatial size and concatenates them."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["ResizeConcat", "check_harbor_shapes"]

INTERPOLATION_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")
_ANTIALIAS_MODES = ("bilinear", "bicubic")
_ALIGN_CORNERS_MODES = ("bilinear", "bicubic")


def check_harbor_shapes(
    input_shapes: Any, output_spatial: Any
) -> tuple[list[tuple[int, ...]], tuple[int, ...]]:
    """Return ``input_shapes`` and ``output_spatial`` as tuples after checking them.

    Inputs are either all maps ``(C, H, W)`` with ``output_spatial`` ``(H, W)``,
    or all vectors ``(C,)`` with ``output_spatial`` ``()``. Raises
    ``ValueError`` naming the shapes otherwise.
    """
    if not isinstance(input_shapes, (list, tuple)) or not input_shapes:
        raise ValueError(f"input_shapes must be a non-empty list of input shapes, got {input_shapes!r}")
    if not isinstance(output_spatial, (list, tuple)) or len(output_spatial) not in (0, 2):
        raise ValueError(f"output_spatial must be [height, width] or [] for vector inputs, got {output_spatial!r}")

    shapes = []
    for shape in input_shapes:
        if not isinstance(shape, (list, tuple)) or len(shape) not in (1, 3) or not all(
            isinstance(size, int) and not isinstance(size, bool) and size >= 1 for size in shape
        ):
            raise ValueError(
                f"each input shape must be (channels, height, width) or (channels,) with positive sizes, "
                f"got {shape!r} in input_shapes {list(input_shapes)!r}"
            )
        shapes.append(tuple(shape))
    spatial = tuple(output_spatial)
    for size in spatial:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"output_spatial sizes must be positive integers, got {output_spatial!r}")

    vector_inputs = [shape for shape in shapes if len(shape) == 1]
    map_inputs = [shape for shape in shapes if len(shape) == 3]
    if vector_inputs and map_inputs:
        raise ValueError(
            f"cannot combine vector inputs {vector_inputs} with feature-map inputs {map_inputs} in one harbor. "
            f"Flatten the maps first (e.g. AdaptiveAvgPool with flatten: true) or keep these nodes apart"
        )
    if vector_inputs and spatial:
        raise ValueError(f"vector inputs {vector_inputs} cannot be brought to spatial size {list(spatial)}")
    if map_inputs and not spatial:
        raise ValueError(f"feature-map inputs {map_inputs} need an output_spatial [height, width], got []")

    return shapes, spatial


class ResizeConcat(nn.Module):
    """Resize every input to ``output_spatial``, then concatenate along channels in the given order.

    Maps inputs of shapes ``(batch, C_i, H_i, W_i)`` to
    ``(batch, sum(C_i), *output_spatial)`` with
    ``torch.nn.functional.interpolate`` (``align_corners=False``). An input
    that already has the target size is passed through unchanged, and which
    inputs need a resize is decided once, at construction. Vector inputs
    ``(batch, C_i)`` with ``output_spatial == ()`` are concatenated as they are.
    The caller's list and tensors are never modified.

    With ``antialias=None`` every bilinear or bicubic resize is antialiased,
    as torchvision's ``resize`` does for tensors by default since 0.17
    (PyTorchTNN resizes with it). Shrinking then low-pass filters the input.
    Bilinear upsampling gives the same values as plain interpolation up to
    rounding, but antialiased bicubic upsampling differs from plain bicubic
    interpolation, so it is antialiased too to match torchvision.

    Args:
        input_shapes: input shapes without the batch dimension, in
            concatenation order, provided by the graph.
        output_spatial: target ``(height, width)``, or ``()`` for vector
            inputs, provided by the graph.
        interpolation: ``"nearest"``, ``"nearest-exact"``, ``"bilinear"``,
            ``"bicubic"`` or ``"area"``. Default ``"bilinear"``.
        antialias: ``None`` or ``True`` antialiases every bilinear or bicubic
            resize (``True`` is invalid with other modes), ``False`` never
            antialiases. Default None.

    Attributes:
        out_channels: channels of the output, the sum of the input channels.
    """

    def __init__(
        self,
        input_shapes: Sequence[Sequence[int]],
        output_spatial: Sequence[int],
        interpolation: str = "bilinear",
        antialias: bool | None = None,
    ) -> None:
        super().__init__()

        shapes, spatial = check_harbor_shapes(input_shapes, output_spatial)
        if interpolation not in INTERPOLATION_MODES:
            raise ValueError(
                f"invalid interpolation {interpolation!r}. Valid modes: {', '.join(INTERPOLATION_MODES)}"
            )
        if antialias and interpolation not in _ANTIALIAS_MODES:
            raise ValueError(
                f"antialias=True needs interpolation 'bilinear' or 'bicubic', got {interpolation!r}. "
                f"Set antialias to null or false"
            )

        self.input_shapes = shapes
        self.output_spatial = spatial
        self.interpolation = interpolation
        self.out_channels = sum(shape[0] for shape in shapes)
        self._align_corners = False if interpolation in _ALIGN_CORNERS_MODES else None

        # One entry per input: None passes the input through, otherwise the antialias flag of its resize.
        self._resize_antialias: list[bool | None] = [self._plan_resize(shape, antialias) for shape in shapes]

        resized = [index for index, plan in enumerate(self._resize_antialias) if plan is not None]
        logger.debug("ResizeConcat resizes inputs %s of %s to %s", resized, shapes, spatial)

    def _plan_resize(self, shape: tuple[int, ...], antialias: bool | None) -> bool | None:
        """Return ``None`` when ``shape`` needs no resize, else the antialias flag for its resize."""
        if len(shape) == 1 or shape[1:] == self.output_spatial:
            return None
        if self.interpolation not in _ANTIALIAS_MODES:
            return False
        return True if antialias is None else antialias

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the concatenation of the resized ``inputs``, ``(batch, out_channels, *output_spatial)``."""
        if len(inputs) != len(self.input_shapes):
            raise ValueError(
                f"ResizeConcat was built for {len(self.input_shapes)} inputs of shapes {self.input_shapes}, "
                f"got {len(inputs)}"
            )

        combined = []
        for index, (tensor, antialias) in enumerate(zip(inputs, self._resize_antialias)):
            if tuple(tensor.shape[1:]) != self.input_shapes[index]:
                raise ValueError(
                    f"input {index} has shape {tuple(tensor.shape[1:])} without the batch dimension, "
                    f"but ResizeConcat was built for {self.input_shapes[index]}"
                )
            if antialias is not None:
                tensor = F.interpolate(
                    tensor,
                    size=self.output_spatial,
                    mode=self.interpolation,
                    align_corners=self._align_corners,
                    antialias=antialias,
                )
            combined.append(tensor)

        return torch.cat(combined, dim=1)
