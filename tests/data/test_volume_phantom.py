"""The built-in CT phantom set: generated once, atomically, realistic geometry, loads through the pipeline."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from spatiotemporal.data.volume import (
    PHANTOM_CLASS_NAMES,
    PhantomSpec,
    build_volume_datasets,
    builtin_volume_config,
    check_case,
    ensure_builtin_volume_dataset,
    load_volume_datalist,
    make_phantom_case,
    model_space_shape,
)

SMALL = PhantomSpec(n_train=1, n_val=1)  # default geometry, fewer cases


@pytest.fixture(scope="module")
def phantom_root(tmp_path_factory):
    return ensure_builtin_volume_dataset(tmp_path_factory.mktemp("cache"), spec=SMALL)


def test_files_json_and_version_marker(phantom_root):
    assert phantom_root.name == "builtin_volume"
    marker = json.loads((phantom_root / "VERSION").read_text())
    assert marker["version"] >= 1 and marker["spec"]["n_train"] == 1
    doc = json.loads((phantom_root / "dataset_0.json").read_text())
    assert doc["labels"] == {str(i): n for i, n in enumerate(PHANTOM_CLASS_NAMES)}
    assert len(doc["training"]) == 1 and len(doc["validation"]) == 1
    for entry in doc["training"] + doc["validation"]:
        assert (phantom_root / entry["image"]).is_file() and (phantom_root / entry["label"]).is_file()
        assert entry["image"].startswith("imagesTr/") and entry["label"].startswith("labelsTr/")
    assert not [p for p in phantom_root.parent.iterdir() if p.name.startswith(".builtin_volume")]


def test_geometry_is_ct_like_anisotropic_and_not_identity(phantom_root):
    dl = load_volume_datalist(phantom_root)
    for item in dl.training + dl.validation:
        img, lab = nib.load(item["image"]), nib.load(item["label"])
        check_case(item, dl.class_names)  # same grid, labels inside the class map
        aff = img.affine
        zooms = np.sqrt((aff[:3, :3] ** 2).sum(0))
        assert zooms[2] / zooms[0] > 2.0  # anisotropic: thick slices
        assert nib.aff2axcodes(aff)[:2] == ("L", "P")  # LPS-like storage, not RAS
        assert np.abs(aff[:3, 3]).max() > 50  # scanner origin far from 0
        assert not np.allclose(aff, np.diag(np.diag(aff)))  # includes a rotation
        data = np.asanyarray(img.dataobj)
        assert img.get_data_dtype() == np.int16 and data.min() <= -950 and data.max() >= 600  # air and bone
        labels = np.asanyarray(lab.dataobj)
        assert set(np.unique(labels)) == set(range(len(PHANTOM_CLASS_NAMES)))
        for k, hu in ((1, 60), (4, 150), (5, 200)):  # median HU of liver, kidney, aorta near their targets
            assert abs(float(np.median(data[labels == k])) - hu) < 20


def test_loads_through_train_and_val_transforms(phantom_root):
    cfg = builtin_volume_config()
    train, val, names = build_volume_datasets(phantom_root, cfg, seed=0)
    assert names == train.class_names == val.class_names == PHANTOM_CLASS_NAMES  # one name on every dataset
    crops = train[0]
    assert len(crops) == cfg.num_samples
    assert crops[0]["image"].shape == (1, *cfg.roi) and crops[0]["label"].shape == (1, *cfg.roi)
    v = val[0]
    dl = load_volume_datalist(phantom_root)
    full = model_space_shape(dl.validation[0]["image"], cfg)
    assert all(s <= f for s, f in zip(v["image"].shape[1:], full))  # foreground crop within the resampled grid
    assert max(v["image"].shape[1:]) <= max(cfg.roi)  # whole body fits one ROI
    assert set(v["label"].unique().long().tolist()) == set(range(6))


def test_generated_once_deterministic_and_regenerated_when_stale(tmp_path, monkeypatch):
    spec = PhantomSpec(n_train=1, n_val=1, shape=(40, 36, 12), spacing=(3.0, 3.0, 8.0))
    monkeypatch.setenv("SPATIO_CACHE", str(tmp_path))
    root = ensure_builtin_volume_dataset(spec=spec)
    assert root == tmp_path / "builtin_volume"
    stamp = (root / "dataset_0.json").stat().st_mtime_ns
    assert ensure_builtin_volume_dataset(spec=spec) == root
    assert (root / "dataset_0.json").stat().st_mtime_ns == stamp  # not regenerated
    a, b = make_phantom_case(1, spec), make_phantom_case(1, spec)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    (root / "VERSION").write_text('{"version": 0}')  # stale marker -> rebuilt in place
    assert ensure_builtin_volume_dataset(spec=spec) == root
    assert json.loads((root / "VERSION").read_text())["version"] >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["builtin_volume"]
