"""Procedural textured shapes on textured backgrounds: the pictures of the built-in image set.

Every picture is a pure function of a NumPy ``Generator`` so the set is reproducible. Shapes are drawn
with PIL at 4x the output size and box-downsampled, which anti-aliases the edges.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES: tuple[str, ...] = (
    "circle",
    "square",
    "triangle",
    "star",
    "cross",
    "ring",
    "bars",
    "checker",
    "crescent",
    "arrow",
)
_SUPERSAMPLE = 4

Point = tuple[float, float]


def _transform(points: list[Point], cx: float, cy: float, r: float, angle: float) -> list[Point]:
    """Scale unit-frame ``points`` by ``r``, rotate by ``angle`` (radians) and move them to ``(cx, cy)``."""
    c, s = math.cos(angle), math.sin(angle)
    return [(cx + r * (x * c - y * s), cy + r * (x * s + y * c)) for x, y in points]


def _regular(n: int, phase: float = -math.pi / 2) -> list[Point]:
    return [(math.cos(phase + 2 * math.pi * k / n), math.sin(phase + 2 * math.pi * k / n)) for k in range(n)]


def _rect(x0: float, y0: float, x1: float, y1: float) -> list[Point]:
    return [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]


def _star() -> list[Point]:
    outer, inner = _regular(5), _regular(5, -math.pi / 2 + math.pi / 5)
    return [p for pair in zip(outer, [(0.42 * x, 0.42 * y) for x, y in inner]) for p in pair]


def _disc(draw: ImageDraw.ImageDraw, cx: float, cy: float, r: float, fill: int) -> None:
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)


# Each drawer paints one shape (value 255) into a supersampled "L" mask.
def _draw_circle(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    _disc(d, cx, cy, r * 0.9, 255)


def _draw_square(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    d.polygon(_transform(_rect(-0.75, -0.75, 0.75, 0.75), cx, cy, r, a), fill=255)


def _draw_triangle(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    d.polygon(_transform(_regular(3), cx, cy, r, a), fill=255)


def _draw_star(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    d.polygon(_transform(_star(), cx, cy, r, a), fill=255)


def _draw_cross(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    w = 0.3
    d.polygon(_transform(_rect(-1, -w, 1, w), cx, cy, r, a), fill=255)
    d.polygon(_transform(_rect(-w, -1, w, 1), cx, cy, r, a), fill=255)


def _draw_ring(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    _disc(d, cx, cy, r, 255)
    _disc(d, cx, cy, r * 0.55, 0)


def _draw_bars(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    for x0 in (-0.9, -0.18, 0.54):
        d.polygon(_transform(_rect(x0, -0.9, x0 + 0.36, 0.9), cx, cy, r, a), fill=255)


def _draw_checker(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    step = 1.6 / 3
    for i in range(3):
        for j in range(3):
            if (i + j) % 2 == 0:
                x0, y0 = -0.8 + i * step, -0.8 + j * step
                d.polygon(_transform(_rect(x0, y0, x0 + step, y0 + step), cx, cy, r, a), fill=255)


def _draw_crescent(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    _disc(d, cx, cy, r * 0.95, 255)
    ox, oy = _transform([(0.45, 0.0)], 0.0, 0.0, r, a)[0]
    _disc(d, cx + ox, cy + oy, r * 0.8, 0)


def _draw_arrow(d: ImageDraw.ImageDraw, cx: float, cy: float, r: float, a: float) -> None:
    arrow = [(1.0, 0.0), (0.2, -0.7), (0.2, -0.25), (-1.0, -0.25), (-1.0, 0.25), (0.2, 0.25), (0.2, 0.7)]
    d.polygon(_transform(arrow, cx, cy, r, a), fill=255)


_DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, float, float, float, float], None]] = {
    "circle": _draw_circle,
    "square": _draw_square,
    "triangle": _draw_triangle,
    "star": _draw_star,
    "cross": _draw_cross,
    "ring": _draw_ring,
    "bars": _draw_bars,
    "checker": _draw_checker,
    "crescent": _draw_crescent,
    "arrow": _draw_arrow,
}


def shape_mask(name: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A soft ``(size, size)`` float mask in [0, 1] of one shape with random size, position and rotation."""
    big = size * _SUPERSAMPLE
    r = rng.uniform(0.28, 0.42) * big
    cx, cy = rng.uniform(r, big - r, size=2)
    angle = rng.uniform(0.0, 2 * math.pi)
    mask = Image.new("L", (big, big), 0)
    _DRAWERS[name](ImageDraw.Draw(mask), float(cx), float(cy), float(r), float(angle))
    return np.asarray(mask.resize((size, size), Image.Resampling.BOX), dtype=np.float32) / 255.0


def _texture(size: int, rng: np.random.Generator) -> np.ndarray:
    """A ``(size, size)`` texture in [-1, 1]: oriented stripes or smooth blobs."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    if rng.random() < 0.5:
        theta, freq = rng.uniform(0, math.pi), rng.uniform(2.0, 7.0)
        return np.sin(
            2 * math.pi * freq * (xx * math.cos(theta) + yy * math.sin(theta)) + rng.uniform(0, 6.3)
        )
    coarse = Image.fromarray(rng.integers(0, 256, size=(4, 4), dtype=np.uint8))
    return np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1.0


def _luma(c: np.ndarray) -> float:
    return float(c @ np.array([0.299, 0.587, 0.114], dtype=np.float32))


def _colour(rng: np.random.Generator, avoid: np.ndarray | None = None) -> np.ndarray:
    """A random RGB colour in [0, 255]; with ``avoid``, one whose luma differs from it by at least 70 (so the
    shape stays visible in grayscale) and whose RGB distance from it is at least 110."""
    while True:
        c = rng.uniform(0, 255, size=3).astype(np.float32)
        if avoid is None or (abs(_luma(c) - _luma(avoid)) >= 70 and np.linalg.norm(c - avoid) >= 110):
            return c


def render_shape(name: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB ``size x size`` picture of shape ``name`` on a textured background, with pixel noise."""
    if name not in _DRAWERS:
        raise ValueError(f"unknown shape {name!r}; expected one of {SHAPE_CLASSES}")
    bg_colour = _colour(rng)
    bg = bg_colour + rng.uniform(5, 25) * _texture(size, rng)[..., None] * rng.uniform(0.5, 1.0, size=3)
    fg_colour = _colour(rng, avoid=bg_colour)
    fg = fg_colour + rng.uniform(0, 20) * _texture(size, rng)[..., None]
    m = shape_mask(name, size, rng)[..., None]
    img = m * fg + (1 - m) * bg + rng.normal(0.0, rng.uniform(0, 8), size=(size, size, 3))
    return Image.fromarray(np.clip(img, 0, 255).round().astype(np.uint8), mode="RGB")
