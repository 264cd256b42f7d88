"""Train / validation datasets of 3D cases with caching and per-(seed, epoch, index) random crops.

Training items are lists of ``num_samples`` dicts ``{"image": (1, *roi) float32, "label": (1, *roi) float32}``
(MONAI's ``RandCropByPosNegLabeld`` convention); ``volume_collate`` flattens a batch of ``B`` cases to
``image (B * num_samples, 1, H, W, D)``. Validation items are single dicts with the whole volume in model space.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import monai
import nibabel as nib
import numpy as np
import torch
from monai.data import CacheDataset, Dataset, PersistentDataset, list_data_collate
from monai.data.utils import pickle_hashing

from ..paths import cache_root
from ..seeding import item_seed, seed_item
from .checks import image_channels, image_files, validate_datalist
from .datalist import DEFAULT_JSON_NAME, VolumeDatalist, fold_split, load_volume_datalist
from .transforms import VolumeDataConfig, train_transforms, val_transforms

log = logging.getLogger(__name__)

volume_collate = list_data_collate
"""Collate for ``DataLoader``: flattens lists of crops, ``image`` -> ``(B * num_samples, 1, H, W, D)``."""

BYTES_PER_VOXEL = 8  # float32 image + float32 label after the deterministic chain (+ 4 per extra image channel)


def model_space_shape(path: str | Path, cfg: VolumeDataConfig) -> tuple[int, int, int]:
    """Shape of a volume after ``Orientationd`` + ``Spacingd`` (before foreground crop), from its header.

    One voxel of margin per axis (rotated grids and rounding), so it bounds MONAI's output shape.
    """
    img = nib.load(image_files(path)[0])
    shape = np.asarray(img.shape[:3], float)
    aff = np.asarray(img.affine, float)
    zooms = np.sqrt((aff[:3, :3] ** 2).sum(0))
    world_axis = nib.orientations.io_orientation(aff)[:, 0]
    target = nib.orientations.axcodes2ornt(cfg.orientation)[:, 0]
    out = [1, 1, 1]
    for i in range(3):
        j = int(np.nonzero(target == world_axis[i])[0][0])
        out[j] = max(1, math.ceil(shape[i] * zooms[i] / cfg.pixdim[j] - 1e-6) + 1)
    return tuple(out)  # type: ignore[return-value]


def estimate_case_bytes(item: Mapping[str, str], cfg: VolumeDataConfig, pad_to_roi: bool = True) -> int:
    """Upper bound of the memory a cached case takes (foreground crop ignored), from the image header."""
    shape = model_space_shape(item["image"], cfg)
    if pad_to_roi:
        shape = tuple(max(s, r) for s, r in zip(shape, cfg.roi))
    files = image_files(item["image"])
    channels = len(files) if len(files) > 1 else image_channels(nib.load(files[0]))
    return int(np.prod(shape)) * (BYTES_PER_VOXEL + 4 * (channels - 1))


def _cache_count(items: Sequence[Mapping[str, str]], cfg: VolumeDataConfig, budget: int,
                 pad_to_roi: bool) -> tuple[int, int]:
    """How many leading cases fit in ``budget`` bytes (and within ``cache_rate``); returns (count, bytes)."""
    limit = int(len(items) * cfg.cache_rate)
    used = n = 0
    for item in items[:limit]:
        b = estimate_case_bytes(item, cfg, pad_to_roi)
        if used + b > budget:
            break
        used, n = used + b, n + 1
    return n, used


def _stamped_hash(item: Mapping[str, Any]) -> bytes:
    """Disk-cache key of a case: its paths plus each file's size and mtime, so edited files are re-cached."""
    stamp = dict(item)
    for k, v in item.items():
        if isinstance(v, str) and os.path.isfile(v):
            st = os.stat(v)
            stamp[f"{k}__stamp"] = f"{st.st_size}:{st.st_mtime_ns}"
    return pickle_hashing(stamp)


def disk_cache_dir(cfg: VolumeDataConfig, split: str) -> Path:
    """``cfg.cache_dir`` (or ``<cache root>/volume_cache``) / a key of the deterministic config + split."""
    root = Path(cfg.cache_dir).expanduser() if cfg.cache_dir else cache_root() / "volume_cache"
    key = json.dumps({"cfg": cfg.deterministic_key(), "split": split, "monai": monai.__version__}, sort_keys=True)
    return root / f"{split}-{hashlib.sha1(key.encode()).hexdigest()[:16]}"


class SeededVolumeDataset(torch.utils.data.Dataset):
    """Wraps a MONAI dataset so the random part of its chain is a function of ``(seed, epoch, index)``.

    ``__getitem__`` calls ``seed_item(seed, epoch, index)`` and re-seeds every MONAI random transform with
    ``Compose.set_random_state(item_seed(seed, epoch, index))`` before running it; call ``set_epoch``
    before each epoch (with persistent DataLoader workers, recreate the iterator after it).
    ``class_names``: label value ``k`` is ``class_names[k]`` (0 is background).
    """

    def __init__(self, base: Dataset, seed: int = 0, epoch: int = 0, cache_info: dict | None = None,
                 class_names: Sequence[str] = ()) -> None:
        self.base = base
        self.class_names = list(class_names)
        self.seed = int(seed)
        self.epoch = int(epoch)
        self.cache_info = cache_info or {}

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> Any:
        index = int(index)
        seed_item(self.seed, self.epoch, index)
        self.base.transform.set_random_state(seed=item_seed(self.seed, self.epoch, index) % (1 << 32))
        return self.base[index]


def _make_dataset(items: list[dict[str, str]], transform: Any, cfg: VolumeDataConfig, split: str,
                  budget: int, pad_to_roi: bool) -> tuple[Dataset, dict]:
    info: dict[str, Any] = {"mode": cfg.cache, "split": split, "cases": len(items)}
    if cfg.cache == "memory":
        n, used = _cache_count(items, cfg, budget, pad_to_roi)
        info.update(cache_num=n, estimated_bytes=used)
        if n < int(len(items) * cfg.cache_rate):
            log.warning("volume %s cache: %d of %d cases fit in the %.0f MiB budget (estimated %.1f MiB)",
                        split, n, len(items), budget / 2**20, used / 2**20)
        ds = CacheDataset(items, transform, cache_num=n, cache_rate=1.0, num_workers=max(1, cfg.num_workers),
                          progress=False)
    elif cfg.cache == "disk":
        cache_dir = disk_cache_dir(cfg, split)
        info.update(cache_dir=str(cache_dir))
        ds = PersistentDataset(items, transform, cache_dir=cache_dir, hash_func=_stamped_hash)
    else:
        ds = Dataset(items, transform)
    return ds, info


def build_volume_datasets(root: str | Path, cfg: VolumeDataConfig, json_name: str = DEFAULT_JSON_NAME,
                          seed: int = 0, validate: bool = True, datalist: VolumeDatalist | None = None, *,
                          fold: tuple[int, int, int] | None = None
                          ) -> tuple[SeededVolumeDataset, SeededVolumeDataset, list[str]]:
    """Read ``root/json_name``, check every case, and build ``(train_ds, val_ds, class_names)``.

    ``train_ds[i]``: list of ``cfg.num_samples`` dicts, ``image``/``label`` float32 ``(1, *cfg.roi)``.
    ``val_ds[i]``: dict, ``image``/``label`` float32 ``(1, H, W, D)`` (whole volume in model space).
    Memory caching caches as many leading cases as fit in ``cfg.cache_mib`` (training first, estimated from
    the headers); ``"disk"`` uses a ``PersistentDataset`` under ``disk_cache_dir(cfg, split)``. ``datalist``: the
    cases already read (e.g. the BraTS layout's, ``brats_layout.py``), instead of ``root/json_name``.
    ``fold``: ``(folds, fold, fold_seed)``: train and validate on fold ``fold`` of the training list
    (:func:`~.datalist.fold_split`); the JSON's own validation list is then not used.
    """
    dl = datalist or load_volume_datalist(root, json_name)
    if fold is not None:
        folds, k, fold_seed = fold
        training, validation = fold_split(dl.training, folds=folds, fold=k, seed=fold_seed,
                                          where=f"{dl.json_path}: training")
        dl = dataclasses.replace(dl, training=training, validation=validation)
    if validate:
        validate_datalist(dl.training, dl.class_names, where=f"{dl.json_path}: training", nonfinite=cfg.nonfinite)
        validate_datalist(dl.validation, dl.class_names, where=f"{dl.json_path}: validation",
                          nonfinite=cfg.nonfinite)
    budget = int(cfg.cache_mib * 2**20)
    train_base, train_info = _make_dataset(dl.training, train_transforms(cfg), cfg, "train", budget, True)
    val_budget = budget - train_info.get("estimated_bytes", 0)
    val_base, val_info = _make_dataset(dl.validation, val_transforms(cfg), cfg, "val", val_budget, False)
    return (SeededVolumeDataset(train_base, seed, cache_info=train_info, class_names=dl.class_names),
            SeededVolumeDataset(val_base, seed, cache_info=val_info, class_names=dl.class_names), dl.class_names)
