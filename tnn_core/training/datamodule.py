"""LightningDataModule that serves any ``ImageData`` as labelled movies.

Images are resized once to the model's ``input_shape`` and turned into
movies ``(batch, time, channels, height, width)`` per batch with
``tnn_core.MakeMovie``; data that already are movies pass through unchanged.
"""

from __future__ import annotations

import logging

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..movie import MakeMovie
from .datasets import ImageData, load_dataset, resize_images, split_indices
from .errors import DataError
from .settings import DataSettings

logger = logging.getLogger(__name__)

__all__ = ["MovieCollate", "TNNDataModule"]


class MovieCollate:
    """Stack ``(image, label)`` samples into ``(movies, labels)``, making movies from images with ``MakeMovie``."""

    def __init__(self, make_movie: MakeMovie) -> None:
        self.make_movie = make_movie

    def __call__(self, samples: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([sample[0] for sample in samples])
        y = torch.stack([sample[1] for sample in samples])
        if x.dim() == 4:
            x = self.make_movie(x)
        return x, y


class TNNDataModule(pl.LightningDataModule):
    """Train/validation/test loaders of one dataset, split with a fixed seed.

    ``input_shape`` is the model's ``(channels, height, width)``. Images are
    resized to its height and width. A channel count that differs from the
    model's raises ``DataError`` in ``setup``.
    """

    def __init__(self, settings: DataSettings, input_shape: tuple[int, int, int], n_times: int) -> None:
        super().__init__()
        self.settings = settings
        self.input_shape = tuple(int(v) for v in input_shape)
        self.n_times = n_times
        image_off = settings.image_off if settings.image_off is not None else n_times
        self.collate = MovieCollate(MakeMovie(n_times, image_off, blank=settings.blank))
        self.data: ImageData | None = None
        self.splits: dict[str, TensorDataset] = {}

    @property
    def num_classes(self) -> int:
        return self._loaded().num_classes

    def _loaded(self) -> ImageData:
        if self.data is None:
            self.setup()
        assert self.data is not None  # setup() sets it or raises
        return self.data

    def setup(self, stage: str | None = None) -> None:
        """Load, check, resize and split the data (once; later calls return at once)."""
        if self.data is not None:
            return

        channels, height, width = self.input_shape
        data = load_dataset(self.settings.name, channels, (height, width))
        self._check_against_model(data)

        data.x = resize_images(data.x, (height, width))
        count = len(data)
        order = torch.arange(count)
        if self.settings.max_samples is not None and self.settings.max_samples < count:
            order = torch.randperm(count, generator=torch.Generator().manual_seed(self.settings.split_seed))
            order = order[: self.settings.max_samples]

        train, val, test = split_indices(
            len(order), self.settings.val_fraction, self.settings.test_fraction, self.settings.split_seed
        )
        for name, indices in (("train", order[train]), ("val", order[val]), ("test", order[test])):
            self.splits[name] = TensorDataset(data.x[indices], data.y[indices])
        self.data = data
        logger.info(
            "dataset %s: %d classes, %d train / %d validation / %d test samples of shape %s",
            data.name, data.num_classes, len(train), len(val), len(test), list(data.x.shape[1:]),
        )

    def _check_against_model(self, data: ImageData) -> None:
        channels = self.input_shape[0]
        if data.channels != channels:
            raise DataError(
                f"dataset {data.name!r} has {data.channels} channel(s) per image but the model's input_shape "
                f"{list(self.input_shape)} expects {channels}; set input_shape[0] to {data.channels} in the "
                f"model config (or model.input_shape in the training file) or use data with {channels} channel(s)"
            )
        if data.is_movie and data.x.shape[1] != self.n_times:
            raise DataError(
                f"dataset {data.name!r} contains movies of {data.x.shape[1]} time steps but the model is unrolled "
                f"for {self.n_times}; set n_times to {data.x.shape[1]}"
            )
        if len(data) < 3:
            raise DataError(f"dataset {data.name!r} has {len(data)} sample(s); training needs at least 3")

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if split not in self.splits:
            self.setup()
        return DataLoader(
            self.splits[split],
            batch_size=self.settings.batch_size,
            shuffle=shuffle,
            num_workers=self.settings.num_workers,
            collate_fn=self.collate,
            persistent_workers=self.settings.num_workers > 0,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)
