"""Harbor policy that concatenates inputs that already share one spatial size."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from .resize_concat import check_harbor_shapes

logger = logging.getLogger(__name__)

__all__ = ["IdentityHarbor"]


class IdentityHarbor(nn.Module):
    """Concatenate the inputs along channels, in the given order, without resizing.

    Maps inputs ``(batch, C_i, H, W)`` to ``(batch, sum(C_i), H, W)``, or
    vectors ``(batch, C_i)`` to ``(batch, sum(C_i))``. Every input must
    already have the spatial size ``output_spatial``, so use ``ResizeConcat``
    for inputs of different sizes. Registered under the name ``Identity``
    in the ``tnn.harbors`` group.

    Args:
        input_shapes: input shapes without the batch dimension, in
            concatenation order, provided by the graph.
        output_spatial: the node's ``(height, width)``, or ``()`` for vector
            inputs, provided by the graph.

    Attributes:
        out_channels: channels of the output, the sum of the input channels.
    """

    def __init__(self, input_shapes: Sequence[Sequence[int]], output_spatial: Sequence[int]) -> None:
        super().__init__()

        shapes, spatial = check_harbor_shapes(input_shapes, output_spatial)
        mismatched = [shape for shape in shapes if shape[1:] != spatial]
        if mismatched:
            raise ValueError(
                f"the Identity harbor needs every input at spatial size {list(spatial)}, but got input shapes "
                f"{shapes}. Use the ResizeConcat harbor policy to resize inputs of other sizes"
            )

        self.input_shapes = shapes
        self.output_spatial = spatial
        self.out_channels = sum(shape[0] for shape in shapes)

    def forward(self, inputs: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the inputs concatenated along dimension 1, ``(batch, out_channels, ...)``."""
        if len(inputs) != len(self.input_shapes):
            raise ValueError(
                f"the Identity harbor was built for {len(self.input_shapes)} inputs of shapes {self.input_shapes}, "
                f"got {len(inputs)}"
            )
        return torch.cat(list(inputs), dim=1)
