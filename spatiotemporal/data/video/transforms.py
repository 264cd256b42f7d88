"""TimeSformer's clip transforms on tensors (no per-frame PIL).

Train: short side -> ``int(round(U[min, max]))`` (bilinear, ``align_corners=False``, long side floored),
random ``crop_size`` crop, horizontal flip with p = 0.5. Test: short side -> ``crop_size``, then
``num_crops`` crops along the long side. Pixels are ``uint8 / 255`` normalised with the given mean/std.
Normalisation is applied after the spatial ops (on fewer pixels); bilinear resizing is an affine
combination, so the result equals the official normalise-then-resize order up to float rounding.
Random draws, in this order: scale, crop y, crop x, flip — all from the ``numpy.random.Generator`` passed in.
With a :class:`~.augment.ClipAugment` (the MViTv2 / VideoMAE recipes): RandAugment on the decoded frames, then a
relative-scale random resized crop instead of the scale jitter + crop, flip, normalise, random erasing; RandAugment,
the crop and erasing each draw one seed from the Generator only when enabled, so the plain path draws as before.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .augment import (
    SEED_BOUND,
    ClipAugment,
    clip_rand_augment,
    clip_random_erasing,
    clip_resized_crop,
    random_erasing,
)
from .decode import short_side_size
from .sampling import spatial_crop_offsets


def frames_to_tchw(frames: torch.Tensor) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> float32 ``(T, 3, H, W)`` in [0, 1] (a channels-last view, no copy of layout)."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected uint8 frames (T, H, W, 3), got {frames.dtype} {tuple(frames.shape)}")
    return frames.permute(0, 3, 1, 2).float().div_(255.0)


def resize_short_side(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of ``(T, C, H, W)`` so that ``min(H, W) == size``; unchanged if it already is."""
    h, w = x.shape[-2:]
    if min(h, w) == size:
        return x
    new_h, new_w = short_side_size(h, w, size)
    return F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float], channel_dim: int) -> torch.Tensor:
    """``(x - mean) / std`` per channel along ``channel_dim``."""
    shape = [1] * x.ndim
    shape[channel_dim] = -1
    m = torch.as_tensor(mean, dtype=x.dtype).view(shape)
    s = torch.as_tensor(std, dtype=x.dtype).view(shape)
    return (x - m) / s


def _to_cthw(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(T, C, H, W)`` in [0, 1] -> normalised contiguous ``(C, T, H, W)``."""
    return normalize(x, mean, std, channel_dim=1).permute(1, 0, 2, 3).contiguous()


def train_clip_transform(
    frames: torch.Tensor,
    rng: np.random.Generator,
    jitter_scales: tuple[int, int],
    crop_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    random_flip: bool = True,
    *,
    augment: ClipAugment | None = None,
) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> normalised float32 ``(C, T, crop_size, crop_size)`` with random augmentation;
    ``augment`` adds the clip-consistent RandAugment / random resized crop / random erasing it enables."""
    aug = augment if augment is not None else ClipAugment()
    if aug.rand_augment:
        frames = clip_rand_augment(frames, aug.rand_augment, int(rng.integers(SEED_BOUND)))
    x = frames_to_tchw(frames)
    if aug.rrc_scale:
        x = clip_resized_crop(x, crop_size, aug.rrc_scale, aug.rrc_ratio, int(rng.integers(SEED_BOUND)))
    else:
        size = int(round(rng.uniform(jitter_scales[0], jitter_scales[1])))
        if size < crop_size:
            raise ValueError(f"jitter scale {size} smaller than crop_size {crop_size}")
        x = resize_short_side(x, size)
        h, w = x.shape[-2:]
        y0 = int(rng.integers(0, h - crop_size + 1))
        x0 = int(rng.integers(0, w - crop_size + 1))
        x = x[..., y0 : y0 + crop_size, x0 : x0 + crop_size]
    if random_flip and rng.uniform() < 0.5:
        x = x.flip(-1)
    x = _to_cthw(x, mean, std)
    if aug.random_erasing > 0:
        x = clip_random_erasing(x, random_erasing(aug.random_erasing), int(rng.integers(SEED_BOUND)))
    return x


def multi_crop_transform(
    frames: torch.Tensor,
    crop_size: int,
    num_crops: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> ``(num_crops, C, T, S, S)``: short side -> S, crops along the long side."""
    x = resize_short_side(frames_to_tchw(frames), crop_size)
    h, w = x.shape[-2:]
    crops = [x[..., y : y + crop_size, c : c + crop_size] for y, c in spatial_crop_offsets(h, w, crop_size, num_crops)]
    return torch.stack([_to_cthw(c, mean, std) for c in crops])
