"""Temporal clip sampling and spatial crop offsets, as in TimeSformer's ``decoder.py`` / ``transform.py``.

A clip of ``T = num_frames`` frames spans ``span = sampling_rate * T`` frames of the video (at the native
fps), or ``sampling_rate * T / target_fps * fps`` frames when ``target_fps`` is given. Its indices are
``linspace(start, start + span - 1, T)`` clamped to ``[0, num_frames - 1]`` and truncated to int, so
the effective spacing is ``(span - 1) / (T - 1)`` (36.4 frames for 8x32) and a video shorter than the
span repeats its last frame instead of failing. Training draws ``start ~ U[0, max(len - span, 0)]``;
testing with K clips uses ``start = max(len - span, 0) * k / K`` (k = 0..K-1; K = 1 starts at frame 0).
"""

from __future__ import annotations

import math

import numpy as np

from ...utils.errors import UserInputError


def clip_span(num_frames: int, sampling_rate: int, fps: float, target_fps: float | None = None) -> float:
    """Number of video frames one clip covers (may be fractional when ``target_fps`` is set)."""
    if num_frames < 1 or sampling_rate < 1:
        raise UserInputError(f"num_frames and sampling_rate must be >= 1, got {num_frames}, {sampling_rate}")
    span = float(sampling_rate * num_frames)
    if target_fps is not None:
        span = span / float(target_fps) * float(fps)
    return span


def clip_indices(start: float, span: float, num_frames: int, video_frames: int) -> np.ndarray:
    """``linspace(start, start + span - 1, num_frames)`` clamped to the video, truncated: int64 ``(T,)``."""
    idx = np.linspace(start, start + span - 1.0, num_frames)
    return np.clip(idx, 0, max(video_frames - 1, 0)).astype(np.int64)


def train_clip_indices(
    video_frames: int,
    fps: float,
    num_frames: int,
    sampling_rate: int,
    rng: np.random.Generator,
    target_fps: float | None = None,
) -> np.ndarray:
    """One random clip: start uniform in ``[0, max(video_frames - span, 0)]``. int64 ``(T,)``."""
    span = clip_span(num_frames, sampling_rate, fps, target_fps)
    start = rng.uniform(0.0, max(video_frames - span, 0.0))
    return clip_indices(start, span, num_frames, video_frames)


def uniform_clip_indices(
    video_frames: int,
    fps: float,
    num_frames: int,
    sampling_rate: int,
    num_clips: int,
    target_fps: float | None = None,
) -> np.ndarray:
    """``num_clips`` clips with uniformly spaced starts ``delta * k / num_clips``. int64 ``(K, T)``."""
    if num_clips < 1:
        raise UserInputError(f"num_clips must be >= 1, got {num_clips}")
    span = clip_span(num_frames, sampling_rate, fps, target_fps)
    delta = max(video_frames - span, 0.0)
    return np.stack([clip_indices(delta * k / num_clips, span, num_frames, video_frames) for k in range(num_clips)])


def segment_indices(video_frames: int, num_frames: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """TSN-style sampling over the whole video, as the official TimeSformer reads Something-Something V2: the
    video is cut into ``num_frames`` segments of ``(video_frames - 1) / num_frames`` frames; one frame per segment,
    random with ``rng`` (training), the segment's middle without. int64 ``(T,)``."""
    seg = (video_frames - 1) / num_frames
    bounds = [(int(np.round(seg * i)), int(np.round(seg * (i + 1)))) for i in range(num_frames)]
    if rng is None:
        return np.asarray([(a + b) // 2 for a, b in bounds], dtype=np.int64)
    return np.asarray([rng.integers(a, b + 1) for a, b in bounds], dtype=np.int64)


def spatial_crop_offsets(height: int, width: int, size: int, num_crops: int) -> list[tuple[int, int]]:
    """``(y, x)`` top-left corners of ``num_crops`` square crops of ``size`` (TimeSformer ``uniform_crop``).

    One crop: the centre ``(ceil((H-S)/2), ceil((W-S)/2))``. Several: spread along the long side
    (left/centre/right for landscape and square frames, top/centre/bottom for portrait), offsets
    ``ceil(k * (L - S) / (n - 1))`` — for 3 crops ``0, ceil((L-S)/2), L-S``; the other axis is centred.
    """
    if height < size or width < size:
        raise UserInputError(f"crop {size} larger than frame {height}x{width}")
    if num_crops < 1:
        raise UserInputError(f"num_crops must be >= 1, got {num_crops}")
    cy, cx = math.ceil((height - size) / 2), math.ceil((width - size) / 2)
    if num_crops == 1:
        return [(cy, cx)]
    long_extent = (height if height > width else width) - size
    steps = [math.ceil(k * long_extent / (num_crops - 1)) for k in range(num_crops)]
    if height > width:
        return [(s, cx) for s in steps]
    return [(cy, s) for s in steps]
