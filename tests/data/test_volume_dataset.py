"""Cached, seeded 3D datasets: crop shapes, collate, determinism per (seed, epoch, index), cache modes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from spatiotemporal.data.volume import (
    PhantomSpec,
    VolumeDataConfig,
    build_volume_datasets,
    disk_cache_dir,
    volume_collate,
    write_phantom_dataset,
)

TINY = PhantomSpec(n_train=3, n_val=1, shape=(40, 32, 12), spacing=(3.0, 3.0, 8.0))


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return write_phantom_dataset(tmp_path_factory.mktemp("ds"), TINY)


def _cfg(**kw) -> VolumeDataConfig:
    base = dict(pixdim=(4.0, 4.0, 8.0), roi=(16, 16, 8), num_samples=3, flip_prob=(0.5, 0.5, 0.5),
                rot90_prob=0.5, shift_prob=0.5, scale_prob=0.5, cache="memory", cache_mib=64)
    base.update(kw)
    return VolumeDataConfig(**base)


def _same(a, b) -> bool:
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in ("image", "label"))


def test_train_items_collate_and_val_shapes(root):
    cfg = _cfg()
    train, val, names = build_volume_datasets(root, cfg, seed=3)
    assert names == ["background", "liver", "spleen", "kidney_l", "kidney_r", "aorta"]
    assert len(train) == 3 and len(val) == 1
    item = train[0]
    assert isinstance(item, list) and len(item) == cfg.num_samples
    for crop in item:
        assert crop["image"].shape == (1, 16, 16, 8) and crop["image"].dtype == torch.float32
        assert crop["label"].shape == (1, 16, 16, 8)
        # HU window to [0, 1], then scale by up to 1.1 and shift by up to 0.1
        assert -0.1 - 1e-6 <= float(crop["image"].min()) and float(crop["image"].max()) <= 1.2 + 1e-6
        assert set(crop["label"].unique().tolist()) <= set(range(6))
    batch = next(iter(DataLoader(train, batch_size=2, collate_fn=volume_collate)))
    assert batch["image"].shape == (2 * 3, 1, 16, 16, 8) and batch["label"].shape == (6, 1, 16, 16, 8)
    v = val[0]
    assert v["image"].ndim == 4 and v["image"].shape == v["label"].shape and v["image"].shape[0] == 1
    assert int(v["label"].max()) >= 4  # organs survive resampling


def test_crops_are_a_function_of_seed_epoch_index(root):
    cfg = _cfg()
    a, _, _ = build_volume_datasets(root, cfg, seed=7)
    b, _, _ = build_volume_datasets(root, cfg, seed=7)
    first = a[1]
    a[0], a[2]  # other items in between do not change item 1
    torch.manual_seed(123)  # nor does the global RNG state
    assert _same(first, a[1])
    assert _same(first, b[1])
    a.set_epoch(1)
    other_epoch = a[1]
    assert not _same(first, other_epoch)
    a.set_epoch(0)
    assert _same(first, a[1])
    c, _, _ = build_volume_datasets(root, cfg, seed=8)
    assert not _same(first, c[1])
    # the same through DataLoader workers (any worker, any order)
    loaded = list(DataLoader(a, batch_size=1, num_workers=2, collate_fn=volume_collate))
    ref = volume_collate([a[i] for i in range(1, 2)])
    assert torch.equal(loaded[1]["image"], ref["image"]) and torch.equal(loaded[1]["label"], ref["label"])


def test_cache_modes_give_identical_items(root, tmp_path):
    results = {}
    for mode in ("memory", "disk", "none"):
        cfg = _cfg(cache=mode, cache_dir=str(tmp_path / "cache"))
        train, val, _ = build_volume_datasets(root, cfg, seed=1)
        train.set_epoch(2)
        results[mode] = ([train[i] for i in range(len(train))], val[0])
        assert train.cache_info["mode"] == mode
    cfg = _cfg(cache="disk", cache_dir=str(tmp_path / "cache"))
    files = sorted(disk_cache_dir(cfg, "train").glob("*.pt"))
    assert len(files) == 3 and len(list(disk_cache_dir(cfg, "val").glob("*.pt"))) == 1
    train, val, _ = build_volume_datasets(root, cfg, seed=1)  # second run reads the disk cache
    train.set_epoch(2)
    results["disk-hit"] = ([train[i] for i in range(len(train))], val[0])
    assert sorted(disk_cache_dir(cfg, "train").glob("*.pt")) == files
    ref_train, ref_val = results["memory"]
    for mode, (tr, va) in results.items():
        assert _same(tr, ref_train), mode
        assert _same(va, ref_val), mode


def test_memory_budget_limits_cached_cases(root):
    full, _, _ = build_volume_datasets(root, _cfg(), seed=0)
    assert full.cache_info["cache_num"] == 3
    per_case = full.cache_info["estimated_bytes"] / 3
    small, small_val, _ = build_volume_datasets(root, _cfg(cache_mib=1.5 * per_case / 2**20), seed=0)
    assert small.cache_info["cache_num"] == 1 and small_val.cache_info["cache_num"] == 0
    for i in range(3):  # uncached cases are computed on the fly, with the same result
        assert _same(small[i], full[i])
