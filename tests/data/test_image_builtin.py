"""The built-in shapes set: layout, balance, loading, statistics, caching, atomic regeneration."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import spatiotemporal.data.image.builtin as builtin
from spatiotemporal.data.image import (
    BUILTIN_CLASSES,
    build_image_datasets,
    builtin_image_config,
    ensure_builtin_image_dataset,
)
from spatiotemporal.data.paths import cache_root


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    cache = tmp_path_factory.mktemp("spatio_cache")
    ensure_builtin_image_dataset(cache)
    return cache


def test_layout_files_and_balance(cache):
    root = cache / "builtin_image"
    assert (root / "VERSION").read_text().strip() == builtin.BUILTIN_VERSION
    for split, n in builtin.BUILTIN_PER_CLASS.items():
        assert sorted(p.name for p in (root / split).iterdir()) == list(BUILTIN_CLASSES)
        for name in BUILTIN_CLASSES:
            files = sorted((root / split / name).glob("*.JPEG"))
            assert len(files) == n
            with Image.open(files[0]) as img:
                assert img.format == "JPEG" and img.mode == "RGB" and img.size == (64, 64)
    assert not [p for p in cache.iterdir() if p.name.startswith(".builtin_image")]  # no temporary leftovers


def test_second_call_reuses_the_cached_set(cache):
    marker = cache / "builtin_image" / "VERSION"
    before = marker.stat().st_mtime_ns
    assert ensure_builtin_image_dataset(cache) == cache / "builtin_image"
    assert marker.stat().st_mtime_ns == before


def test_loads_with_its_config(cache):
    cfg = builtin_image_config()
    assert cfg.img_size == 32 and cfg.crop == "src" and cfg.three_augment
    train, val = build_image_datasets(None, cfg, seed=0, cache_dir=cache)
    assert len(train) == 3000 and len(val) == 500 and tuple(train.class_names) == BUILTIN_CLASSES
    assert np.bincount(train.targets).tolist() == [300] * 10 and np.bincount(val.targets).tolist() == [50] * 10
    item = train[123]
    assert item["image"].shape == (3, 32, 32) and item["image"].dtype == torch.float32
    assert BUILTIN_CLASSES[item["label"]] == Path(train.samples[123][0]).parent.name
    assert val[0]["image"].shape == (3, 32, 32)


def test_config_mean_std_match_the_generated_images(cache):
    files = sorted((cache / "builtin_image" / "train").rglob("*.JPEG"))
    total, total_sq = np.zeros(3), np.zeros(3)
    for f in files:
        a = np.asarray(Image.open(f), dtype=np.float64).reshape(-1, 3) / 255.0
        total += a.sum(0)
        total_sq += (a * a).sum(0)
    n = len(files) * 64 * 64
    mean = total / n
    std = np.sqrt(total_sq / n - mean**2)
    cfg = builtin_image_config()
    assert np.allclose(mean, cfg.mean, atol=0.002) and np.allclose(std, cfg.std, atol=0.002)


def test_generation_is_deterministic(tmp_path):
    small = {"train": 2, "val": 1}
    builtin.generate_builtin_images(tmp_path / "a", small)
    builtin.generate_builtin_images(tmp_path / "b", small)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.JPEG"))
    assert len(files) == 3 * len(BUILTIN_CLASSES)
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_stale_version_is_replaced_atomically_and_env_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.setattr(builtin, "BUILTIN_PER_CLASS", {"train": 2, "val": 1})
    monkeypatch.setenv("SPATIO_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    root = tmp_path / "builtin_image"
    (root / "train").mkdir(parents=True)
    (root / "train" / "stale.txt").write_text("old generator output")
    (root / "VERSION").write_text("builtin_image-v0\n")
    assert ensure_builtin_image_dataset() == root
    assert not (root / "train" / "stale.txt").exists()
    assert (root / "VERSION").read_text().strip() == builtin.BUILTIN_VERSION
    assert len(list((root / "val").rglob("*.JPEG"))) == len(BUILTIN_CLASSES)
    assert sorted(os.listdir(tmp_path)) == ["builtin_image"]
