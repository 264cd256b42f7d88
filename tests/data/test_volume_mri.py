"""MRI volumes: MSD Task01 4D NIfTI (channels last) read as ``(C, H, W, D)``, the per-channel z-score on non-zero
voxels against MONAI's ``NormalizeIntensityd`` on the same file, the BraTS region converter on a hand-made map,
and the built-in MRI phantom set (channels, spacing, nested labels)."""

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from monai.transforms import (
    ConvertToMultiChannelBasedOnBratsClasses,
    EnsureChannelFirst,
    LoadImage,
    NormalizeIntensity,
)
from testing_utils import brats_layout_from_msd

from spatiotemporal.data.volume import (
    MRI_CHANNELS,
    MriPhantomSpec,
    VolumeDataConfig,
    VolumeDataError,
    labels_to_regions,
    load_brats_folder,
    load_volume_datalist,
    make_mri_case,
    regions_to_labels,
    val_transforms,
    validate_datalist,
    write_mri_phantom_dataset,
)
from spatiotemporal.utils.errors import UserInputError

TINY = MriPhantomSpec(n_train=2, n_val=1, shape=(24, 24, 12), spacing=(2.0, 2.0, 5.0))


@pytest.fixture(scope="module")
def msd(tmp_path_factory):
    return write_mri_phantom_dataset(tmp_path_factory.mktemp("msd"), TINY)


def test_msd_layout_reads_four_channels_first(msd):
    doc = json.loads((msd / "dataset.json").read_text())
    assert doc["modality"] == {"0": "FLAIR", "1": "T1w", "2": "t1gd", "3": "T2w"} and doc["tensorImageSize"] == "4D"
    dl = load_volume_datalist(msd, "dataset.json")
    validate_datalist(dl.training, dl.class_names, where="msd")  # 4D images, 3D labels: accepted
    img = nib.load(dl.training[0]["image"])
    assert img.shape == (24, 24, 12, 4) and nib.load(dl.training[0]["label"]).shape == (24, 24, 12)
    cfg = VolumeDataConfig(intensity="zscore_nonzero", pixdim=(2.0, 2.0, 5.0), crop_foreground=False, cache="none")
    out = val_transforms(cfg)(dl.training[0])
    assert out["image"].shape == (4, 24, 24, 12) and out["label"].shape == (1, 24, 24, 12)


def test_zscore_equals_monai_normalize_on_the_same_file(msd):
    path = str(msd / "imagesTr" / "mri_000.nii.gz")
    # RAS already after this flip-free check: compare on the file's own grid (no reorientation, no resampling)
    cfg = VolumeDataConfig(intensity="zscore_nonzero", orientation="LPS", pixdim=(2.0, 2.0, 5.0),
                           crop_foreground=False, cache="none")
    ours = val_transforms(cfg)({"image": path, "label": str(msd / "labelsTr" / "mri_000.nii.gz")})["image"]
    raw = EnsureChannelFirst()(LoadImage(reader="NibabelReader", image_only=True)(path))
    ref = NormalizeIntensity(nonzero=True, channel_wise=True)(raw.float())
    assert torch.allclose(torch.as_tensor(ours), torch.as_tensor(ref), atol=1e-5)
    for c in range(4):  # each channel: mean 0, std 1 over its non-zero voxels; background stays 0
        v = torch.as_tensor(ours[c])[torch.as_tensor(raw[c]) != 0]
        assert abs(float(v.mean())) < 1e-4 and abs(float(v.std(unbiased=False)) - 1) < 1e-3
        assert torch.all(torch.as_tensor(ours[c])[torch.as_tensor(raw[c]) == 0] == 0)


def test_ct_window_stays_the_default_and_bad_modes_are_one_line():
    cfg = VolumeDataConfig()
    assert cfg.intensity == "ct_window" and cfg.labels == "classes" and "intensity" not in cfg.deterministic_key()
    with pytest.raises(UserInputError, match=r"data\.volume\.intensity.*zscore_nonzero"):
        VolumeDataConfig(intensity="zscore")


def test_region_converter_on_a_hand_made_map():
    lab = torch.tensor([0, 1, 2, 3, 4]).view(1, 5, 1, 1)  # (1, H, W, D)
    msd = labels_to_regions(lab, "msd")  # TC = 2|3, WT = 1|2|3, ET = 3
    assert msd[:, :, 0, 0].tolist() == [[0, 0, 1, 1, 0], [0, 1, 1, 1, 0], [0, 0, 0, 1, 0]]
    brats = labels_to_regions(lab[None], "brats")  # (B, 1, ...) -> (B, 3, ...)
    want = ConvertToMultiChannelBasedOnBratsClasses()(lab[0])  # MONAI's converter, BraTS 1 / 2 / 4
    assert brats.shape == (1, 3, 5, 1, 1) and torch.equal(brats[0].bool(), torch.as_tensor(want).bool())
    # and back: ET -> 3, TC - ET -> 2, WT - TC -> 1 (MSD); ET -> 4, TC - ET -> 1, WT - TC -> 2 (BraTS)
    assert regions_to_labels(msd, "msd").flatten().tolist() == [0, 1, 2, 3, 0]
    assert regions_to_labels(brats, "brats").flatten().tolist() == [0, 1, 2, 0, 4]


def test_builtin_mri_phantom_channels_spacing_nested_labels():
    img, lab, aff = make_mri_case(0)
    assert img.shape == (48, 48, 32, len(MRI_CHANNELS)) and img.dtype == np.int16 and lab.shape == (48, 48, 32)
    assert np.allclose(np.sqrt((aff[:3, :3] ** 2).sum(0)), [1.0, 1.0, 2.5])  # anisotropic
    assert set(np.unique(lab).tolist()) == {0, 1, 2, 3}
    head = img[..., 0] > 0
    assert not img[~head].any() and (lab[~head] == 0).all()  # background exactly 0 on every channel
    r = labels_to_regions(torch.from_numpy(lab)[None], "msd").bool()
    tc, wt, et = r[0], r[1], r[2]
    assert torch.all(et <= tc) and torch.all(tc <= wt) and et.sum() < tc.sum() < wt.sum()  # nested
    means = np.array([[img[..., c][lab == k].mean() for c in range(4)] for k in (1, 3)])
    assert means[1, 2] / means[0, 2] > 2.0 > means[1, 0] / means[0, 0]  # the rim lights up on T1gd, not FLAIR


def test_brats_layout_reads_as_the_msd_file(msd, tmp_path):
    root = brats_layout_from_msd(msd, tmp_path / "brats")
    with pytest.warns(UserWarning, match="BraTS layout; holding out the last 1 of 3"):
        dl = load_brats_folder(root)
    assert len(dl.training) == 2 and dl.channel_names == ["FLAIR", "T1w", "t1gd", "T2w"]
    validate_datalist(dl.training, dl.class_names, where="brats")
    cfg = VolumeDataConfig(intensity="zscore_nonzero", pixdim=(2.0, 2.0, 5.0), cache="none")
    ours = val_transforms(cfg)(dl.training[0])
    ref = val_transforms(cfg)(load_volume_datalist(msd, "dataset.json").training[0])
    assert ours["image"].shape == (4, *ref["image"].shape[1:])
    assert torch.allclose(torch.as_tensor(ours["image"]), torch.as_tensor(ref["image"]), atol=1e-5)
    assert torch.equal(labels_to_regions(ours["label"], "brats"), labels_to_regions(ref["label"], "msd"))
    (root / "mri_000" / "mri_000_t2.nii.gz").unlink()
    with pytest.raises(VolumeDataError, match=r"mri_000: no mri_000_t2\.nii\.gz"):
        load_brats_folder(root)
