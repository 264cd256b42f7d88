"""data_recipes/btcv/prepare_btcv.py on a tiny fake RawData layout (folder and zip)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spatiotemporal.data.volume import VolumeDataConfig, VolumeDataError, build_volume_datasets, load_volume_datalist

SCRIPT = Path(__file__).resolve().parents[2] / "data_recipes" / "btcv" / "prepare_btcv.py"
AFF = np.diag([-0.8, -0.8, 3.0, 1.0])


def _load_script():
    spec = importlib.util.spec_from_file_location("prepare_btcv", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _fake_rawdata(root: Path, bad_case: int | None = None) -> Path:
    """RawData/Training/{img,label} for the 30 BTCV ids, 2 test images, plus macOS junk."""
    rng = np.random.default_rng(0)
    raw = root / "RawData"
    for i in [*range(1, 11), *range(21, 41)]:
        img = rng.normal(0, 100, (10, 10, 4)).astype(np.int16)
        lab = np.zeros((10, 10, 4), np.uint8)
        lab[2:5, 2:5, 1:3] = 1 + i % 13
        if i == bad_case:
            lab[0, 0, 0] = 14
        for sub, name, data in (("img", f"img{i:04d}", img), ("label", f"label{i:04d}", lab)):
            (raw / "Training" / sub).mkdir(parents=True, exist_ok=True)
            nib.save(nib.Nifti1Image(data, AFF), str(raw / "Training" / sub / f"{name}.nii.gz"))
    (raw / "Testing" / "img").mkdir(parents=True)
    for i in (61, 62):
        nib.save(nib.Nifti1Image(np.zeros((10, 10, 4), np.int16), AFF), str(raw / "Testing/img" / f"img{i:04d}.nii.gz"))
    (raw / "Training" / "img" / "._img0001.nii.gz").write_bytes(b"junk")
    return raw


def _check_layout(out: Path) -> None:
    doc = json.loads((out / "dataset_0.json").read_text())
    train_ids = [int(e["image"][-11:-7]) for e in doc["training"]]
    val_ids = [int(e["image"][-11:-7]) for e in doc["validation"]]
    assert train_ids == [*range(1, 11), *range(21, 35)] and val_ids == list(range(35, 41))
    assert doc["training"][0] == {"image": "imagesTr/img0001.nii.gz", "label": "labelsTr/label0001.nii.gz"}
    assert doc["labels"]["1"] == "spleen" and doc["labels"]["13"] == "lad" and len(doc["labels"]) == 14
    assert doc["test"] == ["imagesTs/img0061.nii.gz", "imagesTs/img0062.nii.gz"]
    dl = load_volume_datalist(out)
    assert len(dl.training) == 24 and len(dl.validation) == 6 and dl.class_names[6] == "liver"


def test_prepare_from_folder_and_zip(tmp_path):
    mod = _load_script()
    raw = _fake_rawdata(tmp_path / "dl")
    assert mod.main(["--src", str(raw), "--out", str(tmp_path / "btcv"), "--mode", "symlink"]) == 0
    _check_layout(tmp_path / "btcv")
    assert (tmp_path / "btcv" / "imagesTr" / "img0021.nii.gz").is_symlink()
    archive = shutil.make_archive(str(tmp_path / "RawData"), "zip", root_dir=tmp_path / "dl")
    assert mod.main(["--src", archive, "--out", str(tmp_path / "btcv_zip")]) == 0
    _check_layout(tmp_path / "btcv_zip")
    cfg = VolumeDataConfig(pixdim=(1.6, 1.6, 3.0), roi=(8, 8, 4), num_samples=2, cache="none")
    train, val, names = build_volume_datasets(tmp_path / "btcv_zip", cfg)
    assert len(names) == 14 and train[0][0]["image"].shape == (1, 8, 8, 4)


def test_prepare_reports_bad_and_missing_cases(tmp_path, capsys):
    mod = _load_script()
    raw = _fake_rawdata(tmp_path / "dl", bad_case=36)
    assert mod.main(["--src", str(raw), "--out", str(tmp_path / "btcv")]) == 1
    err = capsys.readouterr().err
    assert "validation[1]" in err and "label0036.nii.gz" in err and "[14]" in err
    (raw / "Training" / "label" / "label0007.nii.gz").unlink()
    with pytest.raises(VolumeDataError, match=r"labelsTr/label0007\.nii\.gz"):
        mod.prepare_btcv(raw, tmp_path / "btcv2")
