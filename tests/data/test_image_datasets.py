"""Folder / CSV image datasets: items, labels, determinism, skip-and-count through a DataLoader (CSV rules and
errors: test_labels_csv.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from spatiotemporal.data.image import (
    CsvImageDataset,
    ImageDataConfig,
    ImageFolderDataset,
    ImageReadError,
    build_image_datasets,
    collate_images,
    eval_transform,
    train_transform,
)

CFG = ImageDataConfig(img_size=16, crop="src")
CLASSES = ("cat", "dog", "eel")


def _save(path: Path, seed: int, size: tuple[int, int]) -> None:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8), "RGB").save(path)


@pytest.fixture(scope="module")
def layout(tmp_path_factory) -> Path:
    """root/{train,val}/<class>/*.{JPEG,png} with 3 train and 1 val image per class, various sizes."""
    root = tmp_path_factory.mktemp("imagenet_like")
    for c, name in enumerate(CLASSES):
        for i in range(3):
            ext = "JPEG" if i % 2 == 0 else "png"
            _save(root / "train" / name / f"{name}_{i}.{ext}", seed=10 * c + i, size=(20 + 4 * i, 18 + 2 * c))
        _save(root / "val" / name / f"{name}_v.JPEG", seed=100 + c, size=(17, 23))
    return root


def test_folder_dataset_items_and_labels(layout):
    ds = ImageFolderDataset(layout / "train", eval_transform(CFG), seed=0)
    assert ds.class_names == list(CLASSES) and len(ds) == 9 and ds.num_classes == 3
    for i in range(len(ds)):
        item = ds[i]
        assert set(item) == {"image", "label", "index"} and item["index"] == i
        assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
        assert CLASSES[item["label"]] == Path(ds.samples[i][0]).parent.name
    val = ImageFolderDataset(layout / "val", eval_transform(CFG), class_names=ds.class_names)
    assert val.targets == [0, 1, 2]


def test_folder_dataset_errors(layout, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageFolderDataset(tmp_path / "nope")
    (tmp_path / "val" / "cow").mkdir(parents=True)
    _save(tmp_path / "val" / "cow" / "a.png", 0, (8, 8))
    with pytest.raises(ValueError, match="cow"):
        ImageFolderDataset(tmp_path / "val", class_names=["cat", "dog"])
    (tmp_path / "empty" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no image files"):
        ImageFolderDataset(tmp_path / "empty")


def test_csv_dataset_relative_paths_names_and_ints(layout, tmp_path):
    lst = layout / "train_names.csv"
    lst.write_text("path,label\n# a comment\ntrain/dog/dog_0.JPEG,dog\n\ntrain/cat/cat_1.png,cat\n")
    ds = CsvImageDataset(lst, eval_transform(CFG))
    assert ds.class_names == ["cat", "dog"] and ds.targets == [1, 0]
    assert ds.samples[0][0] == str(layout / "train" / "dog" / "dog_0.JPEG")
    assert ds[1]["image"].shape == (3, 16, 16)
    ints = layout / "train_ints.csv"
    ints.write_text(f"train/eel/eel_2.JPEG,2\n{layout}/train/cat/cat_0.JPEG,0\n")  # absolute path too
    ds = CsvImageDataset(ints, eval_transform(CFG))
    assert ds.targets == [2, 0] and ds.class_names == ["0", "1", "2"] and ds[1]["label"] == 0
    # val list mapped with the train classes
    val = layout / "val_names.csv"
    val.write_text("val/dog/dog_v.JPEG,dog\n")
    assert CsvImageDataset(val, class_names=["cat", "dog"]).targets == [1]


def test_augmentation_is_a_function_of_seed_epoch_index(layout):
    ds = ImageFolderDataset(layout / "train", train_transform(CFG), seed=3)
    first = ds[4]["image"]
    ds[2], ds[7]  # other samples drawn in between do not matter
    assert torch.equal(ds[4]["image"], first)
    ds.set_epoch(1)
    assert not torch.equal(ds[4]["image"], first)
    ds.set_epoch(0)
    assert torch.equal(ds[4]["image"], first)
    other_seed = ImageFolderDataset(layout / "train", train_transform(CFG), seed=4)
    assert not torch.equal(other_seed[4]["image"], first)
    # workers see the same per-sample augmentation as the main process
    loader = DataLoader(ds, batch_size=3, num_workers=2, collate_fn=collate_images)
    batches = list(loader)
    got = torch.cat([b["image"] for b in batches])
    assert torch.equal(got, torch.stack([ds[i]["image"] for i in range(len(ds))]))
    assert torch.equal(torch.cat([b["label"] for b in batches]), torch.tensor(ds.targets))


def test_unreadable_images_are_skipped_and_counted_through_a_dataloader(layout, tmp_path):
    import shutil

    root = tmp_path / "train"
    shutil.copytree(layout / "train", root)
    (root / "cat" / "garbage.JPEG").write_bytes(b"this is not an image")
    whole = (root / "dog" / "dog_0.JPEG").read_bytes()
    (root / "dog" / "truncated.JPEG").write_bytes(whole[: len(whole) // 2])
    ds = ImageFolderDataset(root, train_transform(CFG), seed=0)
    assert len(ds) == 11
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=collate_images)
    kept, skipped = 0, []
    for batch in loader:
        assert batch["image"].shape[0] == batch["label"].shape[0] == batch["index"].shape[0]
        kept += batch["image"].shape[0]
        skipped += batch["skipped"]
    assert kept == 9
    assert sorted(Path(p).name for p in skipped) == ["garbage.JPEG", "truncated.JPEG"]
    strict = ImageFolderDataset(root, eval_transform(CFG), skip_unreadable=False)
    bad = next(i for i, (p, _) in enumerate(strict.samples) if p.endswith("garbage.JPEG"))
    with pytest.raises(ImageReadError, match="garbage.JPEG"):
        strict[bad]


def test_collate_of_an_all_unreadable_batch():
    out = collate_images([{"skipped": "a.png", "index": 0}, {"skipped": "b.png", "index": 1}])
    assert out["skipped"] == ["a.png", "b.png"] and out["image"].shape[0] == 0 and out["label"].shape == (0,)


def test_build_image_datasets_from_folders_and_csvs(layout, tmp_path):
    train, val = build_image_datasets(layout, CFG, seed=1)
    assert isinstance(train, ImageFolderDataset) and len(train) == 9 and len(val) == 3
    assert train[0]["image"].shape == val[0]["image"].shape == (3, 16, 16)
    assert val.class_names == train.class_names
    (tmp_path / "train.csv").write_text(f"{layout}/train/cat/cat_0.JPEG,cat\n{layout}/train/eel/eel_0.JPEG,eel\n")
    (tmp_path / "val.csv").write_text(f"{layout}/val/eel/eel_v.JPEG,eel\n")
    train, val = build_image_datasets(tmp_path, CFG)
    assert isinstance(val, CsvImageDataset) and val.targets == [1] and train.class_names == ["cat", "eel"]
    with pytest.raises(FileNotFoundError, match="train"):
        build_image_datasets(tmp_path / "train.csv", CFG)
    (tmp_path / "other").mkdir()
    with pytest.raises(FileNotFoundError, match="ImageNet layout"):
        build_image_datasets(tmp_path / "other", CFG)
