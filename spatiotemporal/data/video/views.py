"""The test-time views of one video, outside any dataset (``spatio predict``)."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import VideoDataConfig
from .decode import read_clip
from .sampling import segment_indices, uniform_clip_indices
from .transforms import multi_crop_transform


def load_test_views(path: str | Path, cfg: VideoDataConfig) -> torch.Tensor:
    """``(V, C, T, S, S)``: ``cfg.test_num_clips`` uniformly spaced clips x ``cfg.test_num_crops`` crops."""
    c = cfg
    clip = read_clip(
        Path(path),
        lambda n, fps: segment_indices(n, c.num_frames)[None] if c.sampling == "segments" else
        uniform_clip_indices(n, fps, c.num_frames, c.sampling_rate, c.test_num_clips, c.target_fps),
        backend=c.backend,
        short_side=c.decode_short_side,
        num_threads=c.decode_threads,
    )
    crops = multi_crop_transform(clip.frames, c.eval_crop_size, c.test_num_crops, c.mean, c.std)
    n, ch, _, s1, s2 = crops.shape  # (crops, C, K*T, S, S) -> (K*crops, C, T, S, S)
    crops = crops.view(n, ch, c.test_num_clips, c.num_frames, s1, s2).permute(2, 0, 1, 3, 4, 5)
    return crops.reshape(c.test_num_clips * n, ch, c.num_frames, s1, s2)
