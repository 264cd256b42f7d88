"""Prediction back in the patient's space: orientation, spacing and foreground crop are inverted."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from monai.transforms import Compose

from spatiotemporal.data.volume import (
    VolumeDataConfig,
    VolumeDataError,
    geometry_transforms,
    preprocess_volume,
    restore_label_map,
    save_label_map,
)


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    return np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]])


def _case(tmp_path, zooms=(1.5, 1.5, 2.5), rot_deg=0.0, shape=(40, 36, 16), scale=1.0):
    """CT-like volume on an LPS grid (flipped x, y) with air around a body and 3 ellipsoid organs."""
    aff = np.eye(4)
    aff[:3, :3] = _rot_z(rot_deg) @ np.diag([-zooms[0], -zooms[1], zooms[2]])
    aff[:3, 3] = [55.0, 180.0, -420.0]
    ijk = np.stack(np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij"), -1)
    c = (np.asarray(shape) - 1) / 2
    img = np.full(shape, -1000, np.int16)
    body = (((ijk[..., 0] - c[0]) / (15 * scale)) ** 2 + ((ijk[..., 1] - c[1] - 2) / (12 * scale)) ** 2) <= 1
    body &= (ijk[..., 2] >= 2) & (ijk[..., 2] <= shape[2] - 3)
    img[body] = 40
    lab = np.zeros(shape, np.uint8)
    for k, (center, semi, hu) in enumerate([((c[0] - 6, c[1], c[2]), (6, 5, 4), 60),
                                             ((c[0] + 7, c[1] + 3, c[2] + 1), (4, 5, 3), 150),
                                             ((c[0] + 2, c[1] - 5, c[2]), (4, 4, 5), 200)], start=1):
        center = c + (np.asarray(center) - c) * [scale, scale, 1]
        m = (((ijk - center) / (np.asarray(semi) * [scale, scale, 1])) ** 2).sum(-1) <= 1
        img[m & body] = hu
        lab[m & body] = k
    ip, lp = tmp_path / "img.nii.gz", tmp_path / "lab.nii.gz"
    nib.save(nib.Nifti1Image(img, aff), str(ip))
    nib.save(nib.Nifti1Image(lab, aff), str(lp))
    return ip, lp, lab, aff


def _dice(a: np.ndarray, b: np.ndarray, k: int) -> float:
    return 2 * np.sum((a == k) & (b == k)) / (np.sum(a == k) + np.sum(b == k))


def _label_in_model_space(ip, lp, cfg):
    """The label resampled (nearest) into model space exactly like the image: stands in for a prediction."""
    return Compose(geometry_transforms(cfg))({"image": str(ip), "label": str(lp)})["label"]


@pytest.mark.parametrize("rot_deg", [0.0, 7.0])
def test_exact_round_trip_same_spacing_other_orientation(tmp_path, rot_deg):
    ip, lp, lab, aff = _case(tmp_path, rot_deg=rot_deg)
    cfg = VolumeDataConfig(orientation="RAS", pixdim=(1.5, 1.5, 2.5))
    image, meta = preprocess_volume(ip, cfg)
    pred = _label_in_model_space(ip, lp, cfg)
    assert image.shape[:2] == (1, 1) and tuple(image.shape[2:]) == tuple(pred.shape[1:])
    assert image.shape[2] < lab.shape[0] and image.shape[4] < lab.shape[2]  # foreground crop did crop
    restored = restore_label_map(pred[0], meta)
    assert restored.shape == lab.shape
    for k in (1, 2, 3):
        assert _dice(restored, lab, k) == 1.0
    np.testing.assert_array_equal(restored, lab)
    out = save_label_map(restored, ip, tmp_path / "pred.nii.gz")
    saved = nib.load(str(out))
    assert saved.shape == lab.shape and saved.get_data_dtype() == np.uint8
    np.testing.assert_allclose(saved.affine, aff, atol=1e-5)
    np.testing.assert_array_equal(np.asanyarray(saved.dataobj), lab)


def test_round_trip_with_spacing_change_is_close(tmp_path):
    ip, lp, lab, aff = _case(tmp_path, zooms=(1.0, 1.0, 2.5), rot_deg=4.0, shape=(96, 86, 16), scale=2.5)
    cfg = VolumeDataConfig(pixdim=(1.6, 1.6, 2.0))
    image, meta = preprocess_volume(ip, cfg)
    pred = _label_in_model_space(ip, lp, cfg)
    assert tuple(image.shape[2:]) == tuple(pred.shape[1:])
    restored = restore_label_map(pred, meta)  # (1, H, W, D) accepted too
    assert restored.shape == lab.shape
    assert set(np.unique(restored)) <= {0, 1, 2, 3}
    for k in (1, 2, 3):
        assert _dice(restored, lab, k) > 0.95, (k, _dice(restored, lab, k))
    saved = nib.load(str(save_label_map(restored, ip, tmp_path / "pred.nii.gz")))
    np.testing.assert_allclose(saved.affine, aff, atol=1e-5)


def test_wrong_prediction_shape_is_rejected(tmp_path):
    ip, lp, lab, _ = _case(tmp_path)
    cfg = VolumeDataConfig(pixdim=(1.5, 1.5, 2.5))
    image, meta = preprocess_volume(ip, cfg)
    with pytest.raises(VolumeDataError, match=r"img\.nii\.gz: prediction has shape"):
        restore_label_map(np.zeros((5, 5, 5)), meta)
    with pytest.raises(VolumeDataError, match=r"expected the shape \(40, 36, 16\)"):
        save_label_map(np.zeros((40, 36, 15)), ip, tmp_path / "x.nii.gz")
