"""The memory op that returns its input unchanged."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Identity"]


class Identity(nn.Module):
    """Return the input unchanged, ``(batch, ...) -> (batch, ...)``, with no parameters."""

    def __init__(self) -> None:
        # An explicit empty signature, so a config that passes arguments gets an error instead of having them ignored.
        super().__init__()

    def forward(self, x: torch.Tensor, curr_timestep: int | None = None) -> torch.Tensor:
        """Return ``x`` itself (not a copy). ``curr_timestep`` is unused."""
        return x
