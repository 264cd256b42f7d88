"""Clip-consistent video augmentations: every frame of a clip gets the same random parameters.

The published video recipes (PySlowFast ``kinetics.py::_aug_frame``, VideoMAE ``kinetics.py``) apply, in this order:
RandAugment on the decoded frames -> relative-scale random resized crop -> flip -> normalise -> random erasing
(one box per clip), and mixup / cutmix with label smoothing on the batch. Here each step is the field's own
function, applied frame by frame with the same draws:

- RandAugment: timm's ``rand_augment_transform`` (``rand-m7-n4-mstd0.5-inc1`` grammar), bicubic, ``translate_const``
  ``int(0.45 * short side)`` of the frames it sees (SlowFast ``create_random_augment``);
- random erasing: timm's ``RandomErasing`` (mode ``pixel``, one box), the same box and noise on every frame;
- random resized crop: ``torchvision.transforms.RandomResizedCrop.get_params`` drawn once per clip, then
  ``torchvision.transforms.v2.functional.resized_crop`` on the ``(T, C, H, W)`` clip;
- mixup / cutmix: timm ``Mixup`` on ``(B, C, T, H, W)`` through :class:`ClipMixup`.

timm's ops draw from the global ``random`` / ``numpy.random`` / torch RNGs inside their ``__call__``;
:func:`replayed_draws` restarts those RNGs at one seed before every frame, so every frame replays the draws of the
first (same ops, magnitudes, probability outcomes, box), and restores the callers' RNG states afterwards.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from PIL import Image
from timm.data.auto_augment import RandAugment, rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp

SEED_BOUND = 2**32  # numpy's legacy ``np.random.seed`` (timm's op choice) takes seeds below 2**32


@contextmanager
def replayed_draws(seed: int) -> Iterator[Callable[[], None]]:
    """Yield ``restart()``: it seeds Python's ``random``, NumPy's legacy global RNG and torch's CPU generator with
    ``seed``, so that a library transform called after each ``restart()`` draws the same numbers every time.
    The three RNG states are restored on exit."""
    py_state, np_state = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[]):

        def restart() -> None:
            random.seed(seed)
            np.random.seed(seed)
            torch.default_generator.manual_seed(seed)

        try:
            yield restart
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)


@lru_cache(maxsize=32)
def rand_augment(config_str: str, short_side: int) -> RandAugment:
    """timm RandAugment for ``config_str`` with SlowFast's hparams: ``translate_const = int(0.45 * short_side)``,
    bicubic (``AUG.INTERPOLATION``), timm's default fill."""
    hparams = {"translate_const": int(short_side * 0.45), "interpolation": str_to_pil_interp("bicubic")}
    return rand_augment_transform(config_str, hparams)


def clip_rand_augment(frames: torch.Tensor, config_str: str, seed: int) -> torch.Tensor:
    """uint8 ``(T, H, W, 3)`` -> uint8 ``(T, H, W, 3)``: timm RandAugment on every frame with the same ops and
    magnitudes (the draws of :func:`replayed_draws` at ``seed``)."""
    ra = rand_augment(config_str, int(min(frames.shape[1:3])))
    arrays = frames.numpy()
    out = []
    with replayed_draws(seed) as restart:
        for frame in arrays:
            restart()
            out.append(np.asarray(ra(Image.fromarray(np.ascontiguousarray(frame)))))
    return torch.from_numpy(np.stack(out))


def clip_resized_crop(
    x: torch.Tensor, size: int, scale: tuple[float, float], ratio: tuple[float, float], seed: int
) -> torch.Tensor:
    """``(T, C, H, W)`` float -> ``(T, C, size, size)``: one ``RandomResizedCrop.get_params`` box per clip (torch's
    RNG at ``seed``), resized bilinearly without antialiasing (SlowFast ``random_resized_crop``: ``F.interpolate``
    bilinear, ``align_corners=False``)."""
    with replayed_draws(seed) as restart:
        restart()
        top, left, h, w = T.RandomResizedCrop.get_params(x, list(scale), list(ratio))
    return TF.resized_crop(x, top, left, h, w, [size, size], interpolation=TF.InterpolationMode.BILINEAR,
                           antialias=False)


def random_erasing(probability: float) -> RandomErasing:
    """timm RandomErasing as the recipes configure it: mode ``pixel``, one box (``RE_COUNT`` / ``recount`` 1)."""
    return RandomErasing(probability, mode="pixel", max_count=1, num_splits=0, device="cpu")


def clip_random_erasing(x: torch.Tensor, eraser: RandomErasing, seed: int) -> torch.Tensor:
    """Normalised ``(C, T, H, W)``, erased in place: timm ``RandomErasing`` on every frame ``x[:, t]`` with the same
    outcome, box and per-pixel noise. Returns ``x``."""
    with replayed_draws(seed) as restart:
        for t in range(x.shape[1]):
            restart()
            eraser(x[:, t])
    return x


@dataclass(frozen=True)
class ClipAugment:
    """The optional augmentations of a training clip (see :class:`~.config.VideoDataConfig`)."""

    rand_augment: str | None = None
    rrc_scale: tuple[float, float] | None = None
    rrc_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    random_erasing: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.rand_augment or self.rrc_scale or self.random_erasing > 0)


class ClipMixup:
    """timm ``Mixup`` / CutMix on clips: ``(x: (B, C, T, H, W), target: (B,)) -> (x, (B, K) soft targets)``.

    timm's cutmix writes ``x[:, :, y0:y1, x0:x1]``, which on a 5D clip would cut along T and H; the clip is
    therefore viewed as ``(B, C * T, H, W)``, so one box (and one lambda) covers every frame. Other inputs pass
    through to the wrapped ``mixup`` unchanged.
    """

    def __init__(self, mixup: Callable) -> None:
        self.mixup = mixup

    def __call__(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 5:
            return self.mixup(x, target)
        b, c, t, h, w = x.shape
        mixed, target = self.mixup(x.reshape(b, c * t, h, w), target)
        return mixed.reshape(b, c, t, h, w), target
