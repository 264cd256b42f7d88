"""Bad 3D inputs fail up front with an error that names the case and the expectation."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from spatiotemporal.data.volume import (
    VolumeDataError,
    build_volume_datasets,
    builtin_volume_config,
    check_case,
    load_volume_datalist,
    validate_datalist,
)

NAMES = ["background", "liver", "spleen"]
AFF = np.array([[-1.5, 0, 0, 40.0], [0, -1.5, 0, 30.0], [0, 0, 2.5, -100.0], [0, 0, 0, 1]])


def _save(path: Path, data: np.ndarray, aff: np.ndarray = AFF) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, aff), str(path))
    return str(path)


def _image(shape=(12, 10, 6)) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 50, shape).astype(np.int16)


def _label(shape=(12, 10, 6), top: int = 2) -> np.ndarray:
    lab = np.zeros(shape, np.uint8)
    lab[2:6, 2:6, 1:4] = 1
    lab[7:10, 5:8, 2:5] = top
    return lab


def _dataset(root: Path, n_train: int = 2, n_val: int = 1) -> Path:
    entries = []
    for i in range(n_train + n_val):
        _save(root / "imagesTr" / f"c{i}.nii.gz", _image())
        _save(root / "labelsTr" / f"c{i}.nii.gz", _label())
        entries.append({"image": f"imagesTr/c{i}.nii.gz", "label": f"labelsTr/c{i}.nii.gz"})
    doc = {"labels": {str(k): n for k, n in enumerate(NAMES)}, "training": entries[:n_train],
           "validation": entries[n_train:]}
    (root / "dataset_0.json").write_text(json.dumps(doc))
    return root


def test_good_dataset_passes(tmp_path):
    dl = load_volume_datalist(_dataset(tmp_path))
    assert dl.class_names == NAMES
    assert len(dl.training) == 2 and len(dl.validation) == 1
    assert Path(dl.training[0]["image"]).is_absolute()
    validate_datalist(dl.training + dl.validation, dl.class_names)


def test_shape_mismatch_names_case(tmp_path):
    img = _save(tmp_path / "img.nii.gz", _image((12, 10, 6)))
    lab = _save(tmp_path / "lab.nii.gz", _label((12, 10, 5)))
    with pytest.raises(VolumeDataError, match=r"training\[3\].*shape \(12, 10, 6\).*shape \(12, 10, 5\)"):
        check_case({"image": img, "label": lab}, NAMES, where="training[3]")


def test_affine_mismatch_names_case_and_shows_affines(tmp_path):
    img = _save(tmp_path / "img.nii.gz", _image())
    shifted = AFF.copy()
    shifted[0, 3] += 0.5
    lab = _save(tmp_path / "lab.nii.gz", _label(), shifted)
    with pytest.raises(VolumeDataError, match=r"case7.*lab\.nii\.gz.*different affines") as e:
        check_case({"image": img, "label": lab}, NAMES, where="case7")
    assert "max |diff| 0.5" in str(e.value)
    # a difference below the tolerance is accepted
    near = AFF.copy()
    near[0, 3] += 1e-5
    check_case({"image": img, "label": _save(tmp_path / "lab2.nii.gz", _label(), near)}, NAMES)


def test_label_value_outside_class_map(tmp_path):
    img = _save(tmp_path / "img.nii.gz", _image())
    lab = _save(tmp_path / "lab.nii.gz", _label(top=5))
    with pytest.raises(VolumeDataError, match=r"case1.*lab\.nii\.gz.*values \[5\].*class map 0\.\.2"):
        check_case({"image": img, "label": lab}, NAMES, where="case1")


def test_non_integer_label(tmp_path):
    img = _save(tmp_path / "img.nii.gz", _image())
    lab = _label().astype(np.float32)
    lab[0, 0, 0] = 0.5
    with pytest.raises(VolumeDataError, match=r"non-integer"):
        check_case({"image": img, "label": _save(tmp_path / "lab.nii.gz", lab)}, NAMES)


@pytest.mark.parametrize("shape", [(12, 10), (12, 10, 6, 3, 2)])
def test_2d_or_5d_image_rejected(tmp_path, shape):
    img = _save(tmp_path / "img.nii.gz", np.zeros(shape, np.int16))
    lab = _save(tmp_path / "lab.nii.gz", _label())
    with pytest.raises(VolumeDataError, match=r"case0.*img\.nii\.gz.*expected a 3D volume"):
        check_case({"image": img, "label": lab}, NAMES, where="case0")


def test_4d_trailing_singleton_accepted_and_loads(tmp_path):
    root = _dataset(tmp_path)
    _save(root / "imagesTr" / "c0.nii.gz", _image()[..., None])  # (X, Y, Z, 1)
    cfg = builtin_volume_config(pixdim=(1.5, 1.5, 2.5), roi=(16, 16, 8), cache="none")
    train, _, _ = build_volume_datasets(root, cfg)
    assert tuple(train[0][0]["image"].shape) == (1, 16, 16, 8)


def test_missing_file_named_with_json_list_index(tmp_path):
    root = _dataset(tmp_path)
    (root / "labelsTr" / "c1.nii.gz").unlink()
    with pytest.raises(VolumeDataError, match=r"dataset_0\.json: training\[1\].*label.*c1\.nii\.gz.*does not exist"):
        load_volume_datalist(root)
    with pytest.raises(VolumeDataError, match=r"case2: label file .*c1\.nii\.gz' does not exist"):
        check_case({"image": str(root / "imagesTr/c1.nii.gz"), "label": str(root / "labelsTr/c1.nii.gz")},
                   NAMES, where="case2")


def test_missing_json_keys(tmp_path):
    root = _dataset(tmp_path)
    doc = json.loads((root / "dataset_0.json").read_text())
    for key in ("labels", "training"):
        bad = {k: v for k, v in doc.items() if k != key}
        (root / "dataset_0.json").write_text(json.dumps(bad))
        with pytest.raises(VolumeDataError, match=rf"dataset_0\.json: missing key '{key}'"):
            load_volume_datalist(root)
    doc["validation"][0] = {"image": "imagesTr/c2.nii.gz"}
    (root / "dataset_0.json").write_text(json.dumps(doc))
    with pytest.raises(VolumeDataError, match=r"validation\[0\] has no 'label'"):
        load_volume_datalist(root)
    doc["labels"] = {"0": "background", "2": "spleen"}
    (root / "dataset_0.json").write_text(json.dumps(doc))
    with pytest.raises(VolumeDataError, match=r"'labels' keys must be 0\.\.1 without gaps"):
        load_volume_datalist(root)


def test_no_validation_list_holds_out_cases(tmp_path):
    root = _dataset(tmp_path, n_train=5, n_val=0)
    doc = json.loads((root / "dataset_0.json").read_text())
    del doc["validation"]
    (root / "dataset.json").write_text(json.dumps(doc))
    with pytest.warns(UserWarning, match="holding out the last 1 of 5"):
        dl = load_volume_datalist(root, "dataset.json")
    assert len(dl.training) == 4 and dl.validation[0]["image"].endswith("c4.nii.gz")


def test_build_fails_before_training_listing_every_bad_case(tmp_path):
    root = _dataset(tmp_path, n_train=3)
    _save(root / "labelsTr" / "c0.nii.gz", _label(top=9))
    _save(root / "labelsTr" / "c2.nii.gz", _label((12, 10, 7)))
    with pytest.raises(VolumeDataError) as e:
        build_volume_datasets(root, builtin_volume_config(cache="none"))
    msg = str(e.value)
    first = msg.splitlines()[0]  # the line the CLI prints: the first failure, and which other cases failed
    assert "dataset_0.json: training[0]" in first and "values [9]" in first
    assert first.endswith("2 of 3 cases failed the input checks (also [2])")
    assert "dataset_0.json: training[0]" in msg and "values [9]" in msg
    assert "dataset_0.json: training[2]" in msg and "(12, 10, 7)" in msg


def _with_nan(path: Path, count: int = 3) -> None:
    img = nib.load(str(path))
    data = np.asarray(img.dataobj).astype(np.float32)
    data[0, 5:5 + count, 0] = [np.nan, np.inf, -np.inf][:count]
    nib.save(nib.Nifti1Image(data, img.affine), str(path))  # float32 on disk


def test_nan_voxels_in_one_training_image_are_refused_up_front_naming_the_case(tmp_path):
    root = _dataset(tmp_path, n_train=3)
    _with_nan(root / "imagesTr" / "c1.nii.gz")
    with pytest.raises(VolumeDataError) as e:
        build_volume_datasets(root, builtin_volume_config(cache="memory"))
    first = str(e.value).splitlines()[0]
    assert first == (f"{root / 'dataset_0.json'}: training[1]: image '{root / 'imagesTr' / 'c1.nii.gz'}': 3 of 720 "
                     "voxels are NaN or infinite (the first at index (0, 5, 0)); expected finite intensities: repair "
                     "the image, or set data.volume.nonfinite=zero to replace them with 0")


def test_nan_voxels_in_every_image_name_every_case(tmp_path):
    root = _dataset(tmp_path, n_train=3, n_val=1)
    for i in range(4):
        _with_nan(root / "imagesTr" / f"c{i}.nii.gz", count=1)
    dl = load_volume_datalist(root)
    with pytest.raises(VolumeDataError) as e:
        validate_datalist(dl.training, dl.class_names, where="train")
    assert str(e.value).splitlines()[0].endswith("3 of 3 cases failed the input checks (also [1], [2])")


def test_nonfinite_zero_replaces_the_voxels_with_a_warning(tmp_path, caplog):
    root = _dataset(tmp_path, n_train=2)
    _with_nan(root / "imagesTr" / "c0.nii.gz")
    cfg = builtin_volume_config(cache="none", nonfinite="zero")
    train_ds, val_ds, _ = build_volume_datasets(root, cfg)
    crops = train_ds[0]
    assert all(np.isfinite(np.asarray(c["image"])).all() for c in crops)
    assert f"{root / 'imagesTr' / 'c0.nii.gz'}: 3 NaN or infinite voxels replaced with 0" in caplog.text
    from spatiotemporal.data.volume import preprocess_volume

    clean = tmp_path / "clean.nii.gz"
    data = np.asarray(nib.load(str(root / "imagesTr" / "c0.nii.gz")).dataobj).copy()
    data[~np.isfinite(data)] = 0
    nib.save(nib.Nifti1Image(data, AFF), str(clean))
    zeroed, _ = preprocess_volume(root / "imagesTr" / "c0.nii.gz", cfg)
    assert np.array_equal(zeroed.numpy(), preprocess_volume(clean, cfg)[0].numpy())  # NaN -> 0 before the chain
