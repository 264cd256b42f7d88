"""MONAI dictionary transforms of 2D segmentation: PNG/JPEG images and PNG masks read by MONAI's ``PILReader``
(arrays ``(H, W)``: rows first, no axis swap), intensities to [0, 1], ``roi`` crops for training."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from monai.data import PILReader
from monai.transforms import (
    Compose,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    RandFlipd,
    RandShiftIntensityd,
    RandSpatialCropd,
    ScaleIntensityRanged,
    SpatialPadd,
)
from PIL import Image

KEYS = ("image", "label")


@dataclass
class SegImageConfig:
    """``channels`` 1 (grey) or 3 (RGB): what the images are converted to. Training: pad to at least ``roi``,
    a random ``roi`` crop, flips with ``flip_prob`` per axis, ``shift_offsets`` intensity jitter. Evaluation and
    prediction run sliding windows of ``roi`` over the whole image (smaller images are padded and cropped back).
    """

    channels: int = 1
    roi: tuple[int, int] = (64, 64)
    flip_prob: tuple[float, float] = (0.0, 0.0)
    shift_offsets: float = 0.1
    shift_prob: float = 0.5

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ValueError(f"data.image.channels must be 1 or 3, got {self.channels}")
        self.roi = tuple(int(r) for r in self.roi)
        if len(self.roi) != 2 or min(self.roi) < 1:
            raise ValueError(f"data.image.roi must be two positive sizes (H, W), got {self.roi}")
        self.flip_prob = tuple(float(p) for p in self.flip_prob)


def _readers(cfg: SegImageConfig) -> tuple[PILReader, PILReader]:
    mode = "L" if cfg.channels == 1 else "RGB"
    return (PILReader(converter=partial(Image.Image.convert, mode=mode), reverse_indexing=False),
            PILReader(reverse_indexing=False))


def load_transforms(cfg: SegImageConfig, keys: tuple[str, ...] = KEYS) -> list:
    """Load (image converted to ``channels``, mask as its label values) -> channel first -> image to [0, 1]."""
    image_reader, mask_reader = _readers(cfg)
    chain: list = [LoadImaged(keys="image", reader=image_reader, image_only=True)]
    if "label" in keys:
        chain.append(LoadImaged(keys="label", reader=mask_reader, image_only=True))
    return chain + [
        EnsureChannelFirstd(keys=keys, channel_dim="no_channel" if cfg.channels == 1 else -1, allow_missing_keys=True),
        ScaleIntensityRanged(keys="image", a_min=0.0, a_max=255.0, b_min=0.0, b_max=1.0, clip=True),
    ]


def _plain(keys=KEYS) -> EnsureTyped:
    return EnsureTyped(keys=keys, data_type="tensor", dtype=torch.float32, track_meta=False)


def train_transforms(cfg: SegImageConfig) -> Compose:
    """``image (C, *roi)``, ``label (1, *roi)`` floats."""
    chain = load_transforms(cfg) + [
        SpatialPadd(keys=KEYS, spatial_size=cfg.roi),
        RandSpatialCropd(keys=KEYS, roi_size=cfg.roi, random_size=False),
    ]
    chain += [RandFlipd(keys=KEYS, prob=p, spatial_axis=a) for a, p in enumerate(cfg.flip_prob)]
    chain += [RandShiftIntensityd(keys="image", offsets=cfg.shift_offsets, prob=cfg.shift_prob), _plain()]
    return Compose(chain)


def val_transforms(cfg: SegImageConfig) -> Compose:
    """Whole images: ``image (C, H, W)``, ``label (1, H, W)``."""
    return Compose(load_transforms(cfg) + [_plain()])


def image_transforms(cfg: SegImageConfig) -> Compose:
    """One image for prediction: ``image (C, H, W)``."""
    return Compose(load_transforms(cfg, ("image",)) + [_plain(("image",))])
