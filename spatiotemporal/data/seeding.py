"""Per-sample seeding, so that augmentation is a function of (seed, epoch, index).

A sample's random augmentation then does not depend on which worker loads it or on
how many samples were skipped before it, which is what makes a resumed run exact.
"""

from __future__ import annotations

import numpy as np

from ..utils.seeding import seed_everything


def item_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed derived from ``(seed, epoch, index)`` with NumPy's SeedSequence."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch) & 0xFFFFFFFF, int(index) & 0xFFFFFFFF])
    return int(ss.generate_state(2, dtype=np.uint32).astype(np.uint64).dot([1 << 31, 1]))


def seed_item(seed: int, epoch: int, index: int) -> np.random.Generator:
    """Seed Python's, NumPy's and torch's global RNGs for one sample; return a NumPy Generator.

    Call it first thing in ``Dataset.__getitem__``. Libraries that draw from the global RNGs
    (torchvision, timm, MONAI via ``set_random_state``) then become deterministic per sample.
    """
    s = item_seed(seed, epoch, index)
    seed_everything(s)
    return np.random.default_rng(s)
