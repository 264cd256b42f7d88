"""Prediction in the patient's space: preprocess one volume, then map a label map back to its voxel grid.

``preprocess_volume`` runs the invertible chain (load, non-finite voxel rule, orient, resample, window, foreground
crop) on an image (and its label map, for evaluation) and keeps the chain and the preprocessed MetaTensor (its
MONAI trace); ``restore_label_map`` undoes orientation,
spacing and crop with MONAI's ``Invertd`` (nearest interpolation) under our shape checks; ``save_label_map``
writes the result with the input's shape, affine, qform and sform. The writer is nibabel's, not MONAI's
``SaveImaged``: that one writes qform = sform with codes 1, not the reference file's own qform and codes.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import Compose, Invertd

from ...utils.errors import user_error_in
from .checks import image_files, load_header, spatial_shape
from .datalist import VolumeDataError
from .transforms import VolumeDataConfig, geometry_transforms, inference_transforms


def preprocess_volume(path: str | Path, cfg: VolumeDataConfig,
                      label: str | Path | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
    """Load and preprocess ``path`` for the model: ``(image (1, C, H, W, D) float32, meta)``.

    ``meta`` holds the source path, the chain and the preprocessed MetaTensor (whose ``applied_operations`` is
    the trace ``Invertd`` replays), and the model-space / original shapes; pass it to ``restore_label_map``.
    With ``label`` (the case's label map), the same chain also gives ``meta["label"]``: the label map in model
    space, ``(H, W, D)`` int64. Errors name the file (a ``VolumeDataError``, also for NaN voxels).
    """
    files = image_files(path)  # one path, or one per channel (BraTS layout)
    path = Path(files[0])
    orig_shape = spatial_shape(load_header(path, str(path), "image"), str(path), "image", channels=True)
    keys = ("image",) if label is None else ("image", "label")
    chain = inference_transforms(cfg) if label is None else Compose(geometry_transforms(cfg, keys))
    if label is not None:
        load_header(label, str(path), "label")
    try:
        image_in = files if len(files) > 1 else files[0]
        out = chain({"image": image_in, **({"label": str(label)} if label is not None else {})})
    except Exception as e:  # MONAI re-raises what a transform raised as RuntimeError("applying transform ...")
        cause = user_error_in(e)
        if cause is None:
            raise
        raise cause from None
    image = out["image"]
    meta = {
        "source": str(path),
        "transform": chain,
        "image": image,
        "model_shape": tuple(int(s) for s in image.shape[1:]),
        "original_shape": orig_shape,
    }
    if label is not None:
        meta["label"] = torch.round(out["label"].as_tensor()[0]).long()
    return image.as_tensor().float()[None], meta


def restore_label_map(pred_label: torch.Tensor | np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Integer label map ``(H, W, D)`` or ``(1, H, W, D)`` in model space -> ``(X, Y, Z)`` in the original grid.

    MONAI ``Invertd`` (nearest) inverts foreground crop, spacing and orientation from the trace in ``meta``.
    """
    pred = torch.as_tensor(pred_label)
    if pred.ndim == 3:
        pred = pred[None]
    if pred.ndim != 4 or pred.shape[0] != 1 or tuple(pred.shape[1:]) != meta["model_shape"]:
        raise VolumeDataError(f"{meta['source']}: prediction has shape {tuple(pred.shape)}; expected "
                              f"{meta['model_shape']} or (1, *{meta['model_shape']}) (the preprocessed grid)")
    invert = Invertd(keys="pred", transform=meta["transform"], orig_keys="image", nearest_interp=True)
    out = invert({"image": meta["image"], "pred": MetaTensor(pred.detach().cpu().float())})["pred"]
    arr = np.rint(out.detach().cpu().numpy()[0]).astype(np.int16)
    if tuple(arr.shape) != tuple(meta["original_shape"]):
        raise VolumeDataError(f"{meta['source']}: restored label map has shape {arr.shape}, expected "
                              f"{meta['original_shape']} (inverse transform mismatch)")
    return arr


def save_label_map(pred: np.ndarray | torch.Tensor, reference_path: str | Path, out_path: str | Path) -> Path:
    """Write ``pred (X, Y, Z)`` as NIfTI with the reference image's shape and affine (uint8 or int16)."""
    ref = nib.load(str(reference_path))
    shape = spatial_shape(ref, str(reference_path), "reference image", channels=True)
    arr = np.asarray(pred.detach().cpu().numpy() if isinstance(pred, torch.Tensor) else pred)
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if tuple(arr.shape) != shape:
        raise VolumeDataError(f"{out_path}: label map has shape {arr.shape}; expected the shape {shape} of the "
                              f"reference image '{reference_path}'")
    dtype = np.uint8 if arr.min() >= 0 and arr.max() <= 255 else np.int16
    img = nib.Nifti1Image(np.rint(arr).astype(dtype), ref.affine)
    img.header.set_xyzt_units("mm")
    if isinstance(ref, (nib.Nifti1Image, nib.Nifti2Image)):
        img.set_qform(ref.get_qform(), code=int(ref.header["qform_code"]) or 1)
        img.set_sform(ref.affine, code=int(ref.header["sform_code"]) or 1)
    else:
        img.set_qform(ref.affine, code=1)
        img.set_sform(ref.affine, code=1)
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError as e:  # a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "is a file, so the output cannot go under it", e.filename) from None
    nib.save(img, str(out_path))
    return out_path
