"""MONAI dictionary transform chains of the BTCV/UNETR recipe, every step a config field.

Chains run the deterministic part first (load, orient, resample, window, crop to foreground, pad), so a
``CacheDataset`` / ``PersistentDataset`` can cache it, then the random part (pos/neg crops, flips, rot90,
intensity jitter). Items are MONAI MetaTensors with channel first: ``(1, H, W, D)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from monai.transforms import (
    Compose,
    CropForegroundd,
    EnsureChannelFirstd,
    EnsureTyped,
    LoadImaged,
    NormalizeIntensityd,
    Orientationd,
    RandCropByPosNegLabeld,
    RandFlipd,
    RandRotate90d,
    RandScaleIntensityd,
    RandShiftIntensityd,
    ScaleIntensityRanged,
    Spacingd,
    SpatialPadd,
)

from ...utils.errors import UserInputError
from .nonfinite import NONFINITE_RULES, NonFiniteVoxelsd

CACHE_MODES = ("memory", "disk", "none")
KEYS = ("image", "label")
INTENSITY_MODES = ("ct_window", "zscore_nonzero")
LABEL_MODES = ("classes", "brats_regions")
LABEL_CONVENTIONS = ("msd", "brats")
RAS_LABELS = (("L", "R"), ("P", "A"), ("I", "S"))  # nibabel's world convention (NibabelReader gives RAS)


@dataclass
class VolumeDataConfig:
    """Each step of the BTCV recipe (research-contributions UNETR/BTCV, MONAI tutorial defaults).

    Geometry: ``orientation`` axcodes, ``pixdim`` target spacing in mm (per RAS axis).
    Intensity: ``ScaleIntensityRanged(a_min, a_max, b_min, b_max, clip)`` (HU window -> [0, 1]).
    ``crop_foreground``: ``CropForegroundd(source_key="image", allow_smaller=True)`` on ``image > 0``.
    Training crops: ``roi`` cube, ``RandCropByPosNegLabeld(pos, neg, num_samples)``; volumes smaller than the
    ROI are padded first. Augmentation: ``flip_prob`` per axis, ``rot90_prob``/``rot90_max_k`` (axes 0, 1),
    ``shift_offsets``/``shift_prob`` and ``scale_factors``/``scale_prob`` intensity jitter.
    Caching: ``cache`` in ``"memory" | "disk" | "none"``; ``cache_rate`` (fraction of cases),
    ``cache_mib`` (memory budget), ``cache_dir`` (disk cache root), ``num_workers`` (cache filling threads).
    ``nonfinite``: what NaN or infinite image voxels do, ``error`` (refuse the case) or ``zero`` (replace them
    with 0, with a warning); see ``nonfinite.py``.
    ``intensity``: ``ct_window`` (the HU window above, CT) or ``zscore_nonzero`` (MRI: MONAI
    ``NormalizeIntensityd(nonzero=True, channel_wise=True)``, each channel to zero mean / unit std over its
    non-zero voxels, background left 0; the window fields are then unused).
    ``labels``: ``classes`` (one softmax output per label value) or ``brats_regions`` (three sigmoid outputs TC,
    WT, ET from the label map, see ``regions.py``); ``label_convention``: the label values of the tumour
    sub-regions, ``msd`` (MSD Task01: 1 edema, 2 non-enhancing, 3 enhancing) or ``brats`` (BraTS: 1 necrotic
    core, 2 edema, 4 enhancing).
    """

    orientation: str = "RAS"
    pixdim: tuple[float, float, float] = (1.5, 1.5, 2.0)
    a_min: float = -175.0
    a_max: float = 250.0
    b_min: float = 0.0
    b_max: float = 1.0
    clip: bool = True
    crop_foreground: bool = True
    roi: tuple[int, int, int] = (96, 96, 96)
    pos: float = 1.0
    neg: float = 1.0
    num_samples: int = 4
    image_threshold: float = 0.0
    flip_prob: tuple[float, float, float] = (0.1, 0.1, 0.1)
    rot90_prob: float = 0.1
    rot90_max_k: int = 3
    shift_offsets: float = 0.1
    shift_prob: float = 0.5
    scale_factors: float = 0.1
    scale_prob: float = 0.0
    cache: str = "memory"
    cache_rate: float = 1.0
    cache_mib: float = 4096.0
    cache_dir: str | None = None
    num_workers: int = 0
    nonfinite: str = "error"
    intensity: str = "ct_window"
    labels: str = "classes"
    label_convention: str = "msd"

    def __post_init__(self) -> None:
        self.pixdim = _triple(self.pixdim, "pixdim", float)
        self.roi = _triple(self.roi, "roi", int)
        self.flip_prob = _triple(self.flip_prob, "flip_prob", float)
        if any(p <= 0 for p in self.pixdim):
            raise UserInputError(f"VolumeDataConfig.pixdim must be positive mm spacings, got {self.pixdim}")
        if any(r <= 0 for r in self.roi):
            raise UserInputError(f"VolumeDataConfig.roi must be positive voxel sizes, got {self.roi}")
        if self.cache not in CACHE_MODES:
            raise UserInputError(f"VolumeDataConfig.cache must be one of {CACHE_MODES}, got {self.cache!r}")
        if len(self.orientation) != 3:
            raise UserInputError(f"VolumeDataConfig.orientation must be 3 axcodes like 'RAS', got {self.orientation!r}")
        if self.num_samples < 1:
            raise UserInputError(f"VolumeDataConfig.num_samples must be >= 1, got {self.num_samples}")
        if self.nonfinite not in NONFINITE_RULES:
            raise UserInputError(f"VolumeDataConfig.nonfinite must be one of {NONFINITE_RULES}, got {self.nonfinite!r}")
        for key, allowed in (("intensity", INTENSITY_MODES), ("labels", LABEL_MODES),
                             ("label_convention", LABEL_CONVENTIONS)):
            if getattr(self, key) not in allowed:
                raise UserInputError(f"VolumeDataConfig.{key} (data.volume.{key}) must be one of {allowed}, got "
                                     f"{getattr(self, key)!r}")
        if not 0.0 <= self.cache_rate <= 1.0:
            raise UserInputError(f"VolumeDataConfig.cache_rate must be in [0, 1], got {self.cache_rate}")

    def deterministic_key(self) -> dict[str, Any]:
        """Fields that change the cached (deterministic) part of the chain."""
        keys = ("orientation", "pixdim", "a_min", "a_max", "b_min", "b_max", "clip", "crop_foreground", "roi",
                "nonfinite")
        out = {k: getattr(self, k) for k in keys}
        if self.intensity != "ct_window":  # the key of a CT recipe's cache stays what it was
            out["intensity"] = self.intensity
        return out


def _triple(v: Any, name: str, kind: type) -> tuple:
    if isinstance(v, (int, float)):
        v = (v, v, v)
    v = tuple(kind(x) for x in v)
    if len(v) != 3:
        raise UserInputError(f"VolumeDataConfig.{name} must have 3 values (one per axis), got {v}")
    return v


def geometry_transforms(cfg: VolumeDataConfig, keys: tuple[str, ...] = KEYS) -> list:
    """Load (nibabel) -> channel first (a 4D file's last axis is its channels, MSD) -> the non-finite voxel rule
    -> orient -> resample -> intensity -> foreground crop; invertible. ``image`` is ``(C, H, W, D)``.

    ``ct_window``: the HU window, then the crop on ``image > 0``. ``zscore_nonzero``: the crop first (on any
    channel > 0, the raw MRI background being 0), then the per-channel z-score over non-zero voxels.
    """
    modes = ("bilinear", "nearest")[: len(keys)]
    chain: list = [
        LoadImaged(keys=keys, reader="NibabelReader", image_only=True),
        EnsureChannelFirstd(keys=keys),
        NonFiniteVoxelsd(keys="image", rule=cfg.nonfinite),
        Orientationd(keys=keys, axcodes=cfg.orientation, labels=RAS_LABELS),
        Spacingd(keys=keys, pixdim=cfg.pixdim, mode=modes),
    ]
    crop = [CropForegroundd(keys=keys, source_key="image", allow_smaller=True, start_coord_key=None,
                            end_coord_key=None)] if cfg.crop_foreground else []
    if cfg.intensity == "zscore_nonzero":
        return chain + crop + [NormalizeIntensityd(keys="image", nonzero=True, channel_wise=True)]
    return chain + [ScaleIntensityRanged(keys="image", a_min=cfg.a_min, a_max=cfg.a_max, b_min=cfg.b_min,
                                         b_max=cfg.b_max, clip=cfg.clip)] + crop


def background_value(cfg: VolumeDataConfig) -> float:
    """The image value of padded voxels: the window's floor (CT), 0 after a z-score on non-zero voxels (MRI)."""
    return 0.0 if cfg.intensity == "zscore_nonzero" else cfg.b_min


def train_deterministic_transforms(cfg: VolumeDataConfig) -> list:
    """Geometry chain + pad to at least ``roi`` so every random crop has the configured shape."""
    return geometry_transforms(cfg) + [
        SpatialPadd(keys="image", spatial_size=cfg.roi, value=background_value(cfg)),
        SpatialPadd(keys="label", spatial_size=cfg.roi),
    ]


def random_transforms(cfg: VolumeDataConfig) -> list:
    """``num_samples`` pos/neg-balanced ROI crops, then flips, rot90 and intensity jitter per crop."""
    chain: list = [
        RandCropByPosNegLabeld(keys=KEYS, label_key="label", spatial_size=cfg.roi, pos=cfg.pos, neg=cfg.neg,
                               num_samples=cfg.num_samples, image_key="image",
                               image_threshold=cfg.image_threshold),
    ]
    chain += [RandFlipd(keys=KEYS, prob=p, spatial_axis=axis) for axis, p in enumerate(cfg.flip_prob)]
    chain += [
        RandRotate90d(keys=KEYS, prob=cfg.rot90_prob, max_k=cfg.rot90_max_k),
        RandScaleIntensityd(keys="image", factors=cfg.scale_factors, prob=cfg.scale_prob),
        RandShiftIntensityd(keys="image", offsets=cfg.shift_offsets, prob=cfg.shift_prob),
    ]
    return chain


def _plain_tensors() -> EnsureTyped:
    # Plain float32 tensors whatever the cache mode (a disk cache stores tensors without MetaTensor metadata).
    return EnsureTyped(keys=KEYS, data_type="tensor", dtype=torch.float32, track_meta=False)


def train_transforms(cfg: VolumeDataConfig) -> Compose:
    """Training chain; a case gives a list of ``num_samples`` dicts, ``image`` float ``(C, *roi)``, ``label``
    float ``(1, *roi)``."""
    return Compose(train_deterministic_transforms(cfg) + random_transforms(cfg) + [_plain_tensors()])


def val_transforms(cfg: VolumeDataConfig) -> Compose:
    """Validation chain (no random ops): full volume ``image`` ``(C, H, W, D)`` / ``label`` ``(1, H, W, D)``
    float, in model space."""
    return Compose(geometry_transforms(cfg) + [_plain_tensors()])


def inference_transforms(cfg: VolumeDataConfig) -> Compose:
    """Image-only chain for prediction; invertible (see ``inverse.restore_label_map``)."""
    return Compose(geometry_transforms(cfg, keys=("image",)))
