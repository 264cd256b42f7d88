"""The built-in 2D segmentation set: axial slices of the built-in CT phantoms (``data/volume/phantom.py``) as PNG
images and PNG masks in the folder layout of :mod:`.folder`, generated once into
``$SPATIO_CACHE/builtin_image_seg``.

Each phantom goes through the volume pipeline's own validation chain (RAS, 2.5 x 2.5 x 3 mm, HU window
[-175, 250] -> [0, 1], foreground crop); every axial slice ``[:, :, k]`` that holds an organ, and every 4th slice
without one, is written as an 8-bit grey PNG whose rows are the volume's first axis (H, left-right) and columns its
second (W, posterior-anterior), so that 2D kernels learned on the slices line up with the in-plane axes of the
volumes (2D -> 3D inflation). Masks hold the label values 0..5 (``class_names.txt``). The phantoms' training and
validation cases give the ``train`` and ``val`` splits.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ...utils.atomic import ensure_generated
from ..paths import cache_root
from ..volume import builtin_volume_config, ensure_builtin_volume_dataset, load_volume_datalist, val_transforms
from .folder import CLASS_NAMES_FILE

BUILTIN_SEG_VERSION = "builtin_image_seg-v1"
EMPTY_EVERY = 4  # slices without an organ: keep one in this many


def write_phantom_slices(out: Path, volume_root: Path) -> None:
    dl = load_volume_datalist(volume_root)
    chain = val_transforms(builtin_volume_config(cache="none"))
    for split, items in (("train", dl.training), ("val", dl.validation)):
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "masks" / split).mkdir(parents=True, exist_ok=True)
        for item in items:
            case = chain(dict(item))
            img = np.asarray(case["image"])[0]
            lab = np.asarray(case["label"])[0].round().astype(np.uint8)
            stem = Path(item["image"]).name.removesuffix(".gz").removesuffix(".nii")
            for k in range(img.shape[2]):
                if not lab[:, :, k].any() and k % EMPTY_EVERY:
                    continue
                name = f"{stem}_z{k:03d}.png"
                Image.fromarray(np.round(np.clip(img[:, :, k], 0, 1) * 255).astype(np.uint8)).save(
                    out / "images" / split / name)
                Image.fromarray(lab[:, :, k]).save(out / "masks" / split / name)
    (out / CLASS_NAMES_FILE).write_text("\n".join(dl.class_names) + "\n")


def ensure_builtin_seg_dataset(cache_dir: str | Path | None = None) -> Path:
    """Return the built-in 2D set's root, generating it (and the phantoms it slices) once."""
    parent = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    volume_root = ensure_builtin_volume_dataset(cache_dir)
    return ensure_generated(parent / "builtin_image_seg", BUILTIN_SEG_VERSION + "\n",
                            lambda out: write_phantom_slices(out, volume_root))
