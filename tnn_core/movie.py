"""Stimulus presentation: turn still images into movies."""

from __future__ import annotations

import torch

__all__ = ["MakeMovie"]


class MakeMovie:
    """Show an image for ``image_off`` steps, then blank frames, for ``times`` steps in all.

    Call it on images ``(batch, C, H, W)`` to get a new tensor
    ``(batch, times, C, H, W)``; a 5-D input ``(batch, T, C, H, W)`` uses its
    first frame. The input is never modified. ``blank`` is the value of the
    blank frames (0.5: mid-grey for images in [0, 1]; apply normalisation
    after the movie is made, or pass the normalised grey value).

    Args:
        times: total number of frames.
        image_off: number of frames that show the image; ``image_off >= times``
            shows it throughout.
        blank: value of the blank frames.
    """

    def __init__(self, times: int, image_off: int, blank: float = 0.5) -> None:
        if not isinstance(times, int) or times < 1:
            raise ValueError(f"times must be a positive integer, got {times!r}")
        if not isinstance(image_off, int) or image_off < 0:
            raise ValueError(f"image_off must be a non-negative integer, got {image_off!r}")
        self.times = times
        self.image_off = image_off
        self.blank = float(blank)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.ndim == 5:
            images = images[:, 0]
        if images.ndim != 4:
            raise ValueError(f"MakeMovie expects images of shape (batch, C, H, W), got {list(images.shape)}")
        shown = min(self.image_off, self.times)
        movie = images.new_full((images.shape[0], self.times, *images.shape[1:]), self.blank)
        movie[:, :shown] = images.unsqueeze(1)
        return movie

    def __repr__(self) -> str:
        return f"MakeMovie(times={self.times}, image_off={self.image_off}, blank={self.blank})"
