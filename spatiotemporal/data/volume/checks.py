"""Up-front checks of 3D cases (NIfTI headers + label values), run before any training starts.

Each failure is a ``VolumeDataError`` that names the case (JSON entry and file path) and says what was
expected. Headers, the label voxels and the voxels of images stored as floats (the only ones that can hold a NaN)
are read, so a 30-case CT set is checked in seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import nibabel as nib
import numpy as np

from .datalist import VolumeDataError
from .nonfinite import nonfinite_error

AFFINE_ATOL = 1e-3


def load_header(path: str | Path, where: str, field: str) -> nib.spatialimages.SpatialImage:
    """The NIfTI (or other nibabel) image at ``path``, voxels not read; ``VolumeDataError`` naming ``where``,
    ``field`` and the file when it is missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise VolumeDataError(f"{where}: {field} file '{p}' does not exist")
    try:
        img = nib.load(str(p))
    except Exception as e:  # nibabel raises several types for unreadable files
        raise VolumeDataError(f"{where}: {field} file '{p}' is not a readable NIfTI/nibabel image ({e})") from e
    return img


def spatial_shape(img: nib.spatialimages.SpatialImage, where: str, field: str,
                  channels: bool = False) -> tuple[int, int, int]:
    """The 3D shape of ``img``; a 4D image with a trailing singleton dim counts as 3D. With ``channels`` (images),
    a 4D ``(X, Y, Z, C)`` file (MSD: the channels on the last axis) gives its ``(X, Y, Z)``."""
    shape = tuple(int(s) for s in img.shape)
    if len(shape) == 4 and (shape[3] == 1 or channels):
        shape = shape[:3]
    if len(shape) != 3:
        also = "or a 4D (X, Y, Z, C) image with its channels last" if channels else "a 4D (X, Y, Z, 1) is accepted"
        raise VolumeDataError(f"{where}: {field} '{img.get_filename()}' has shape {shape}; expected a 3D "
                              f"volume (X, Y, Z) ({also})")
    return shape  # type: ignore[return-value]


def image_channels(img: nib.spatialimages.SpatialImage) -> int:
    """The channel count of an image file: its 4th axis (MSD 4D NIfTI), else 1."""
    return int(img.shape[3]) if len(img.shape) == 4 else 1


def image_files(image: str | Path | Sequence[str | Path]) -> list[str]:
    """A case's image files: one path, or one per channel (the BraTS layout)."""
    return [str(p) for p in image] if isinstance(image, (list, tuple)) else [str(image)]


def check_image_values(img: nib.spatialimages.SpatialImage, where: str, nonfinite: str = "error") -> None:
    """With ``nonfinite="error"`` (see ``nonfinite.py``), refuse an image with NaN or infinite voxels. Only images
    stored as floats are read (integer voxels cannot be NaN); with ``"zero"`` the transforms replace them."""
    if nonfinite != "error" or np.dtype(img.get_data_dtype()).kind != "f":
        return
    bad = ~np.isfinite(np.asanyarray(img.dataobj))
    if bad.any():
        raise nonfinite_error(f"{where}: image '{img.get_filename()}'", bad)


def check_case(item: Mapping[str, str], class_names: Sequence[str], where: str = "case",
               affine_atol: float = AFFINE_ATOL, check_values: bool = True, nonfinite: str = "error") -> None:
    """Check one ``{"image", "label"}`` case; raise ``VolumeDataError`` naming ``where`` and the file.

    Checks: both files exist and are 3D; same shape and affine (within ``affine_atol``, compared on the
    NIfTI headers before any resampling); label values are integers in ``0..len(class_names)-1``; image voxels
    are finite (with ``nonfinite="error"``; ``"zero"``: the transforms replace them, with a warning).
    """
    files = image_files(item["image"])
    imgs = [load_header(f, where, "image") for f in files]
    ishape = spatial_shape(imgs[0], where, "image", channels=len(files) == 1)
    for f, im in zip(files[1:], imgs[1:]):  # one file per channel: each 3D, on the first one's grid
        other = spatial_shape(im, where, "image")
        if other != ishape or not np.allclose(im.affine, imgs[0].affine, atol=affine_atol, rtol=0):
            raise VolumeDataError(f"{where}: image '{f}' has shape {other} or an affine unlike '{files[0]}' "
                                  f"{ishape}; expected every channel file on the same voxel grid")
    if check_values:
        for im in imgs:
            check_image_values(im, where, nonfinite)
    if "label" not in item:
        return
    img = imgs[0]
    item = {**item, "image": files[0]}
    lab = load_header(item["label"], where, "label")
    lshape = spatial_shape(lab, where, "label")
    if ishape != lshape:
        raise VolumeDataError(f"{where}: image '{item['image']}' has shape {ishape} but label "
                              f"'{item['label']}' has shape {lshape}; expected the same voxel grid")
    ia, la = np.asarray(img.affine, float), np.asarray(lab.affine, float)
    if not np.allclose(ia, la, atol=affine_atol, rtol=0):
        diff = float(np.abs(ia - la).max())
        raise VolumeDataError(
            f"{where}: image '{item['image']}' and label '{item['label']}' have different affines "
            f"(max |diff| {diff:.4g} > {affine_atol}); expected the same voxel-to-world mapping.\n"
            f"image affine:\n{np.array2string(ia, precision=4)}\nlabel affine:\n{np.array2string(la, precision=4)}")
    if check_values:
        values = np.unique(np.asanyarray(lab.dataobj))
        if values.dtype.kind == "f":
            if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
                raise VolumeDataError(f"{where}: label '{item['label']}' holds non-integer values "
                                      f"{values[values != np.round(values)][:5].tolist()}; expected integer "
                                      f"class labels")
        k = len(class_names)
        bad = values[(values < 0) | (values >= k)]
        if bad.size:
            raise VolumeDataError(f"{where}: label '{item['label']}' holds values {bad[:10].tolist()} outside "
                                  f"the class map 0..{k - 1} ({', '.join(class_names)})")


def validate_datalist(items: Sequence[Mapping[str, str]], class_names: Sequence[str],
                      where: str = "datalist", affine_atol: float = AFFINE_ATOL,
                      max_report: int = 10, nonfinite: str = "error") -> None:
    """Check every case up front; raise one ``VolumeDataError`` listing all failing cases.

    ``where`` prefixes each case name, e.g. ``"/data/dataset_0.json: training"`` gives
    ``"/data/dataset_0.json: training[3]"``. The message's first line is the first failure and names the other
    failing cases; the lines after it hold every failure in full (up to ``max_report``).
    """
    errors: list[tuple[int, str]] = []
    for i, item in enumerate(items):
        try:
            check_case(item, class_names, f"{where}[{i}]", affine_atol=affine_atol, nonfinite=nonfinite)
        except VolumeDataError as e:
            errors.append((i, str(e)))
    if errors:
        first = errors[0][1].splitlines()[0]
        others = [f"[{i}]" for i, _ in errors[1:]]
        if others:
            first += (f"; {len(errors)} of {len(items)} cases failed the input checks (also "
                      f"{', '.join(others[:10])}{', ...' if len(others) > 10 else ''})")
        shown = "\n".join(msg for _, msg in errors[:max_report])
        more = f"\n... and {len(errors) - max_report} more" if len(errors) > max_report else ""
        raise VolumeDataError(f"{first}\n{shown}{more}")
