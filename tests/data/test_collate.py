"""The one skip-aware collate, shared by the image and video pipelines."""

from __future__ import annotations

from pathlib import Path

import torch

from spatiotemporal.data.collate import collate_skipping
from spatiotemporal.data.image import collate_images
from spatiotemporal.data.video import collate_videos


def _items(key: str) -> list[dict]:
    return [
        {key: torch.ones(3, 2, 2), "label": 1, "index": 4},
        {"skipped": Path("bad.file"), "reason": "truncated: header declares 8 frames, found 3", "index": 5},
        {key: torch.zeros(3, 2, 2), "label": 0, "index": 6},
    ]


def test_readable_items_are_stacked_and_skipped_paths_listed_with_their_reasons():
    out = collate_skipping(_items("x"), "x")
    assert set(out) == {"x", "label", "index", "skipped", "skip_reasons"}
    assert out["skip_reasons"] == ["truncated: header declares 8 frames, found 3"]
    assert out["x"].shape == (2, 3, 2, 2) and torch.equal(out["x"][1], torch.zeros(3, 2, 2))
    assert out["label"].dtype == out["index"].dtype == torch.int64
    assert out["label"].tolist() == [1, 0] and out["index"].tolist() == [4, 6] and out["skipped"] == ["bad.file"]


def test_all_skipped_batch_is_empty_with_the_same_keys():
    out = collate_skipping([{"skipped": "a", "index": 0}, {"skipped": "b", "index": 1}], "video")
    assert set(out) == {"video", "label", "index", "skipped", "skip_reasons"} and out["skipped"] == ["a", "b"]
    assert out["skip_reasons"] == ["", ""]  # items that give no reason
    assert out["video"].shape == (0,) and out["video"].dtype == torch.float32
    assert out["label"].shape == out["index"].shape == (0,) and out["label"].dtype == torch.int64


def test_image_and_video_collates_are_the_same_function_under_their_keys():
    for fn, key in ((collate_images, "image"), (collate_videos, "video")):
        got, ref = fn(_items(key)), collate_skipping(_items(key), key)
        assert set(got) == set(ref) and all(
            torch.equal(got[k], ref[k]) if torch.is_tensor(ref[k]) else got[k] == ref[k] for k in ref
        )
