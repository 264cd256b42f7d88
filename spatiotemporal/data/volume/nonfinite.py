"""The rule for NaN or infinite voxels in an input image (``data.volume.nonfinite``).

``error`` (default): the case is refused with a :class:`~.datalist.VolumeDataError` that names the file, the
number of bad voxels and the first one. ``zero``: they are replaced by 0 (in the file's own units, before the
HU window) with one warning per file. The up-front data check applies the rule to every case before training or
evaluation (``checks.check_case``); :class:`NonFiniteVoxelsd`, the first step after loading in every chain,
applies it where no check ran (``spatio predict``). MONAI has no transform for this rule.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable, Mapping
from typing import Any

import numpy as np
import torch
from monai.transforms import MapTransform

from .datalist import VolumeDataError

log = logging.getLogger(__name__)

NONFINITE_RULES = ("error", "zero")


def nonfinite_error(where: str, bad: np.ndarray | torch.Tensor) -> VolumeDataError:
    """The one-line error for the boolean mask ``bad`` of non-finite voxels of the image ``where``."""
    mask = np.asarray(bad.cpu() if isinstance(bad, torch.Tensor) else bad)
    first = tuple(int(i) for i in np.argwhere(mask)[0])
    return VolumeDataError(
        f"{where}: {int(mask.sum())} of {mask.size} voxels are NaN or infinite (the first at index {first}); "
        f"expected finite intensities: repair the image, or set data.volume.nonfinite=zero to replace them with 0")


def warn_replaced(where: str, count: int) -> None:
    log.warning("%s: %d NaN or infinite voxels replaced with 0 (data.volume.nonfinite=zero)", where, count)


class NonFiniteVoxelsd(MapTransform):
    """Apply the ``rule`` (``error`` | ``zero``) to the NaN / infinite voxels of ``keys`` (MetaTensors from
    ``LoadImaged``, whose ``filename_or_obj`` names the file)."""

    def __init__(self, keys, rule: str = "error") -> None:
        super().__init__(keys)
        if rule not in NONFINITE_RULES:
            raise VolumeDataError(f"data.volume.nonfinite must be one of {NONFINITE_RULES}, got {rule!r}")
        self.rule = rule

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            img = d[key]
            if not torch.is_floating_point(img):
                continue
            bad = ~torch.isfinite(img)
            if not bad.any():
                continue
            where = str(getattr(img, "meta", {}).get("filename_or_obj", key))
            if self.rule == "error":
                raise nonfinite_error(where, bad[0] if bad.ndim == 4 else bad)
            warn_replaced(where, int(bad.sum()))
            d[key] = torch.where(bad, torch.zeros((), dtype=img.dtype), img)
        return d
