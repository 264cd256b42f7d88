"""The one skip-aware collate: batches of dataset items where unreadable inputs came back as ``{"skipped"}``."""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import default_collate


def collate_skipping(batch: list[dict[str, Any]], input_key: str) -> dict[str, Any]:
    """Collate the readable items of ``batch`` and list the skipped ones.

    Items are ``{input_key: tensor, "label": int, "index": int}`` or ``{"skipped": path, "reason": str,
    "index": int}``. Returns ``{input_key: (B, ...) tensor, "label": (B,) int64, "index": (B,) int64,
    "skipped": [paths], "skip_reasons": [why each was skipped, "" when the item gave none]}`` where ``B`` counts
    the readable items (the engine pops ``skipped`` and ``skip_reasons`` and counts them). When every item was
    skipped, ``B`` is 0 and ``batch[input_key]`` is an empty float tensor of shape ``(0,)``.
    """
    kept = [item for item in batch if "skipped" not in item]
    if kept:
        out = default_collate(kept)
    else:
        out = {
            input_key: torch.empty(0, dtype=torch.float32),
            "label": torch.empty(0, dtype=torch.int64),
            "index": torch.empty(0, dtype=torch.int64),
        }
    skipped = [item for item in batch if "skipped" in item]
    out["skipped"] = [str(item["skipped"]) for item in skipped]
    out["skip_reasons"] = [str(item.get("reason", "")) for item in skipped]
    return out
