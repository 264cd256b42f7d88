"""Build the train / val image datasets from ``--data`` (folder layout or CSVs) or the built-in set."""

from __future__ import annotations

from pathlib import Path

from torchvision.datasets.folder import find_classes

from ..labels_csv import read_labels_csv
from .builtin import ensure_builtin_image_dataset
from .config import ImageDataConfig
from .csv_list import CsvImageDataset
from .folder import ImageFolderDataset
from .image_list import ImageListDataset
from .transforms import eval_transform, train_transform


def _split_dataset(root: Path, split: str, cfg: ImageDataConfig, seed: int, train: bool, class_names=None):
    tf = train_transform(cfg) if train else eval_transform(cfg)
    if (root / split).is_dir():
        return ImageFolderDataset(root / split, tf, seed, class_names)
    if (root / f"{split}.csv").is_file():
        return CsvImageDataset(root / f"{split}.csv", tf, seed, class_names)
    raise FileNotFoundError(
        f"{root}: expected a '{split}/' folder of class folders (ImageNet layout) "
        f"or a '{split}.csv' of path,label lines"
    )


def image_root(data: str | Path | None, cache_dir: str | Path | None = None) -> Path:
    """The dataset folder: ``data``, or the built-in set (generated on first use) when ``data`` is None."""
    root = ensure_builtin_image_dataset(cache_dir) if data is None else Path(data)
    if not root.is_dir():
        raise FileNotFoundError(f"--data {root} is not a folder (expected train/ and val/ inside)")
    return root


def image_class_names(root: str | Path, split: str = "train") -> list[str]:
    """The class names of ``root/split`` (sorted class folders, or the labels of ``split.csv``), without
    building a dataset."""
    root = Path(root)
    if (root / split).is_dir():
        return list(find_classes(root / split)[0])
    if (root / f"{split}.csv").is_file():
        return list(read_labels_csv(root / f"{split}.csv")[1])
    raise FileNotFoundError(f"{root}: expected a '{split}/' folder of class folders (ImageNet layout) "
                            f"or a '{split}.csv' of path,label lines")


def build_image_datasets(
    data: str | Path | None,
    cfg: ImageDataConfig,
    seed: int = 0,
    cache_dir: str | Path | None = None,
) -> tuple[ImageListDataset, ImageListDataset]:
    """``(train, val)`` datasets with ``train_transform(cfg)`` / ``eval_transform(cfg)``.

    ``data``: a folder holding ``train/`` and ``val/`` class folders, or ``train.csv`` and ``val.csv``;
    ``None`` uses the built-in shapes set (generated on first use under ``cache_dir``). Val labels use the
    train classes. Items: ``{"image": (3, img_size, img_size) float32, "label": int, "index": int}``.
    """
    root = image_root(data, cache_dir)
    train = _split_dataset(root, "train", cfg, seed, True)
    val = _split_dataset(root, "val", cfg, seed, False, train.class_names)
    return train, val
