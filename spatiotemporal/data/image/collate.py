"""Collate image items, dropping the unreadable ones and reporting their paths."""

from __future__ import annotations

import torch
from torch.utils.data import default_collate


def collate_images(batch: list[dict]) -> dict:
    """Collate ``ImageListDataset`` items into a batch dict.

    Returns ``{"image": (B, 3, H, W) float32, "label": (B,) int64, "index": (B,) int64, "skipped": [paths]}``
    where ``B`` counts only the readable items; the items returned as ``{"skipped": path}`` are dropped and
    their paths listed. If every item was unreadable, ``B`` is 0 (``image`` has shape ``(0,)``).
    """
    kept = [item for item in batch if "skipped" not in item]
    skipped = [item["skipped"] for item in batch if "skipped" in item]
    if kept:
        out = default_collate(kept)
    else:
        out = {
            "image": torch.empty(0),
            "label": torch.empty(0, dtype=torch.long),
            "index": torch.empty(0, dtype=torch.long),
        }
    out["skipped"] = skipped
    return out
