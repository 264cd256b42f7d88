"""Collate image items, dropping the unreadable ones and reporting their paths."""

from __future__ import annotations

from ..collate import collate_skipping


def collate_images(batch: list[dict]) -> dict:
    """``{"image": (B, 3, H, W) float32, "label": (B,), "index": (B,), "skipped": [paths]}`` (``collate_skipping``)."""
    return collate_skipping(batch, "image")
