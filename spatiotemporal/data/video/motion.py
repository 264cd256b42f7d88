"""Built-in *motion* video set: small-object direction with no global cue (``data.dataset: builtin_motion``).

The default built-in set (:mod:`.synthetic`) brightens the whole scene a little with every state, a global cue
that a tiny model picks up long before it learns the sprite's motion. This set has none: the scene light is
constant and only a small disk changes. Four classes in two pairs; the two classes of a pair show the same
frames in reverse order:

=====  ========  ===================================================
label  name      the disk over the 8 states (one state per 2 frames)
=====  ========  ===================================================
0      up        moves up by ``STEP`` px per state, radius fixed
1      down      the frames of ``up`` in reverse order
2      grow      radius grows by ``GROW`` px per state, centre fixed
3      shrink    the frames of ``grow`` in reverse order
=====  ========  ===================================================

Everything else (background clutter, disk colour, start position, radius, per-frame noise) is drawn from the
same random stream in an order that does not depend on the class, so ``up`` and ``down`` (and ``grow`` and
``shrink``) have the same distribution of *unordered* frame sets: within a pair only the order tells them apart
(chance 50%), while the pair itself is visible in any single frame. A model that ignores order scores at most 50%
overall. 32 px, 16 frames at 10 fps, intra-coded H.264 like the default set; 400 / 100 / 100 videos. Read it with
the default set's settings (:func:`~.synthetic.builtin_video_config`: 8 frames at stride 2, one per state).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ...utils.atomic import ensure_generated
from ..paths import cache_root
from .synthetic import HOLD, NUM_VIDEO_FRAMES, SIZE, SPLIT_SIZES, STATES, _background, write_video_set

GENERATOR_VERSION = 1
#: (name, pair index, reversed within its pair)
CLASSES: tuple[tuple[str, int, bool], ...] = (("up", 0, False), ("down", 0, True), ("grow", 1, False),
                                              ("shrink", 1, True))
STEP = 2.0  # px the disk moves per state (up / down)
GROW = 0.6  # px the radius changes per state (grow / shrink)
RADIUS = (2.0, 3.0)  # radius of a moving disk; a growing disk goes from RADIUS[0] - 0.5 up by GROW per state


def class_names() -> list[str]:
    return [name for name, _, _ in CLASSES]


def _disk(cy: float, cx: float, r: float) -> np.ndarray:
    """Anti-aliased disk coverage ``(SIZE, SIZE)`` in [0, 1] (1 px soft edge)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5
    return np.clip(r + 0.5 - np.hypot(yy - cy, xx - cx), 0.0, 1.0)


def render_frames(label: int, rng: np.random.Generator, noise: float = 0.03) -> np.ndarray:
    """uint8 ``(NUM_VIDEO_FRAMES, SIZE, SIZE, 3)`` of class ``label``; the draws do not depend on the label."""
    background = _background(rng)
    r = float(rng.uniform(*RADIUS))
    travel = STEP * (STATES - 1)
    cx = float(rng.uniform(r + 1, SIZE - r - 1))
    top = float(rng.uniform(r + 1, SIZE - r - 1 - travel))  # up / down: centre from top + travel to top
    cy_fixed, cx_fixed = (float(v) for v in rng.uniform(7.0, SIZE - 7.0, 2))  # grow / shrink: radius <= 5.7 px
    colour = rng.uniform(0.0, 0.25, 3) if rng.uniform() < 0.5 else rng.uniform(0.8, 1.0, 3)
    noise_frames = rng.normal(0.0, noise, (NUM_VIDEO_FRAMES, SIZE, SIZE, 3)).astype(np.float32)
    _, pair, backwards = CLASSES[label]
    states = np.arange(STATES)[::-1] if backwards else np.arange(STATES)
    frames = np.empty((NUM_VIDEO_FRAMES, SIZE, SIZE, 3), np.uint8)
    for t, j in enumerate(np.repeat(states, HOLD)):
        if pair == 0:  # state 0 at the bottom, moving up
            cover = _disk(top + travel - STEP * j, cx, r)
        else:
            cover = _disk(cy_fixed, cx_fixed, RADIUS[0] - 0.5 + GROW * j)
        img = background * (1.0 - cover[..., None]) + colour * cover[..., None] + noise_frames[t]
        frames[t] = np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)
    return frames


def generate_motion_video_dataset(out_dir: str | Path, split_sizes: dict[str, int] | None = None,
                                  seed: int = 0) -> Path:
    """The motion set under ``out_dir`` (:func:`~.synthetic.write_video_set`: mp4 files, split CSVs, balanced
    classes); video ``i`` of split ``s`` is drawn from ``default_rng([seed, 7, s, i])``. Returns ``out_dir``."""
    return write_video_set(out_dir, class_names(), dict(SPLIT_SIZES if split_sizes is None else split_sizes),
                           lambda label, s, i: render_frames(label, np.random.default_rng([seed, 7, s, i])))


def ensure_motion_video_dataset(cache_dir: str | Path | None = None) -> Path:
    """Path of the motion set (``<cache>/builtin_motion``), generated once (see ``ensure_builtin_video_dataset``)."""
    root = Path(cache_dir).expanduser() if cache_dir is not None else cache_root()
    marker = {"generator": "spatiotemporal.data.video.motion", "version": GENERATOR_VERSION,
              "split_sizes": SPLIT_SIZES, "size": SIZE, "frames": NUM_VIDEO_FRAMES, "step": STEP, "grow": GROW,
              "radius": list(RADIUS), "classes": [list(c) for c in CLASSES]}
    return ensure_generated(root / "builtin_motion", json.dumps(marker, indent=1, sort_keys=True) + "\n",
                            generate_motion_video_dataset)
