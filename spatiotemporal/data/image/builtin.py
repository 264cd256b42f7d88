"""The built-in image set: 10 classes of procedurally drawn textured shapes, ImageNet folder layout.

Used when no ``--data`` is given. It is the 2D pretraining set whose ViT weights are later inflated into a
TimeSformer trained on the built-in temporal-order video set (a textured sprite over clutter), the
ImageNet-initialisation claim in miniature (``benchmarks/inflation_helps.py``). Generated once,
deterministically, into ``$SPATIO_CACHE/builtin_image`` (default ``~/.cache/spatiotemporal/builtin_image``):
``train/<class>/*.JPEG`` (300 per class) and ``val/<class>/*.JPEG`` (50 per class), 64x64 RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...utils.atomic import ensure_generated
from ..paths import cache_root
from .config import ImageDataConfig
from .shapes import SHAPE_CLASSES, render_shape

BUILTIN_VERSION = "builtin_image-v2"
BUILTIN_CLASSES = tuple(sorted(SHAPE_CLASSES))  # label i is BUILTIN_CLASSES[i] (sorted folder names)
BUILTIN_STORED_SIZE = 64
BUILTIN_PER_CLASS = {"train": 300, "val": 50}
# Per-channel mean / std of the generated train images in [0, 1] (measured; a test recomputes them).
BUILTIN_MEAN = (0.4939, 0.4987, 0.5038)
BUILTIN_STD = (0.2861, 0.2973, 0.2844)
_SEED = 20240611


def builtin_image_config(**overrides) -> ImageDataConfig:
    """``ImageDataConfig`` for the built-in set: 32 px, Simple Random Crop + 3-Augment, its own mean/std."""
    kw: dict = dict(
        img_size=32,
        crop="src",
        mean=BUILTIN_MEAN,
        std=BUILTIN_STD,
        num_workers=2,
        repeated_aug=3,
        ra_round_to=256,
    )
    kw.update(overrides)
    return ImageDataConfig(**kw)


def generate_builtin_images(out: Path, per_class: dict[str, int] | None = None) -> None:
    """Write ``out/<split>/<class>/<class>_<i>.JPEG``; every image is a function of (split, class, i)."""
    per_class = per_class or BUILTIN_PER_CLASS
    for split_id, (split, n) in enumerate(per_class.items()):
        for class_id, name in enumerate(BUILTIN_CLASSES):
            folder = out / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                rng = np.random.default_rng([_SEED, split_id, class_id, i])
                img = render_shape(name, BUILTIN_STORED_SIZE, rng)
                img.save(folder / f"{name}_{i:04d}.JPEG", quality=92)


def ensure_builtin_image_dataset(cache_dir: str | Path | None = None) -> Path:
    """Return the built-in set's root (with ``train/`` and ``val/``), generating it first if needed.

    ``cache_dir`` replaces the cache root (``$SPATIO_CACHE``). Generation (about 5 s) goes through
    ``utils.atomic.ensure_generated`` (marker ``BUILTIN_VERSION``): concurrent or interrupted runs never see a
    partial set, and a set with another version is replaced.
    """
    parent = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    return ensure_generated(parent / "builtin_image", BUILTIN_VERSION + "\n", generate_builtin_images)
