"""The BraTS layout: one folder per case, one NIfTI per modality, ``CASE/CASE_{flair,t1,t1ce,t2}.nii.gz`` and the
label map ``CASE/CASE_seg.nii.gz`` (BraTS 2018-2021 labels: 1 necrotic core, 2 edema, 4 enhancing tumour).

A case's ``image`` is the list of its four files in MSD Task01's channel order (FLAIR, T1w, T1gd, T2w), which MONAI's
``LoadImaged`` stacks into ``(4, H, W, D)``, so a model trained on one layout reads the other.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

from .datalist import VolumeDataError, VolumeDatalist

BRATS_MODALITIES = ("flair", "t1", "t1ce", "t2")  # file suffixes, in MSD Task01's channel order
BRATS_CHANNEL_NAMES = ["FLAIR", "T1w", "t1gd", "T2w"]
BRATS_CLASS_NAMES = ["background", "necrotic core", "edema", "unused", "enhancing tumour"]  # label values 0..4


def _nifti(folder: Path, stem: str) -> Path | None:
    for suffix in (".nii.gz", ".nii"):
        if (folder / f"{stem}{suffix}").is_file():
            return folder / f"{stem}{suffix}"
    return None


def load_brats_folder(root: str | Path, val_fraction: float = 0.2) -> VolumeDatalist:
    """Every ``CASE/`` folder of ``root`` holding ``CASE_seg.nii.gz``, sorted by name; the last
    ``ceil(val_fraction * n)`` cases are held out for validation (with a warning, as for an MSD ``dataset.json``).
    A case missing a modality file is a ``VolumeDataError`` naming the file expected."""
    root = Path(root).expanduser().resolve()
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        seg = _nifti(folder, f"{folder.name}_seg")
        if seg is None:
            continue
        images = []
        for m in BRATS_MODALITIES:
            path = _nifti(folder, f"{folder.name}_{m}")
            if path is None:
                raise VolumeDataError(f"{folder}: no {folder.name}_{m}.nii.gz (the BraTS layout has one file per "
                                      f"modality, {', '.join(f'CASE_{x}' for x in BRATS_MODALITIES)}, and CASE_seg)")
            images.append(str(path))
        cases.append({"image": images, "label": str(seg)})
    if len(cases) < 2:
        raise VolumeDataError(f"{root}: found {len(cases)} BraTS case folder(s) (CASE/CASE_seg.nii.gz with "
                              f"CASE_{{flair,t1,t1ce,t2}}.nii.gz); expected at least 2, or an MSD Task01 dataset.json")
    n_val = max(1, math.ceil(val_fraction * len(cases)))
    warnings.warn(f"{root}: BraTS layout; holding out the last {n_val} of {len(cases)} cases for validation",
                  stacklevel=2)
    return VolumeDatalist(cases[:-n_val], cases[-n_val:], list(BRATS_CLASS_NAMES), root,
                          channel_names=list(BRATS_CHANNEL_NAMES))
