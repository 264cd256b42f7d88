"""Videos stored as a folder of images, one per frame (``img_00001.jpg`` ...), as mmaction2's *rawframes* and the
official TimeSformer's Something-Something V2 loader read them. Frames are the folder's images in natural order
(``img_2`` before ``img_10``); a folder has no frame rate, so ``FRAME_FOLDER_FPS`` is assumed."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.io import ImageReadMode, decode_image, read_file

from .source import VideoDecodeError, VideoSource, check_indices, short_side_size

FRAME_SUFFIXES = (".jpg", ".jpeg", ".png")
FRAME_FOLDER_FPS = 30.0


def _natural_key(p: Path) -> list:
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", p.name)]


def frame_files(folder: Path) -> list[Path]:
    """The frame images of ``folder`` in natural order."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_natural_key)


class FrameFolderVideo(VideoSource):
    """A :class:`~.source.VideoSource` over a frame folder: ``get_frames(indices) -> uint8 (T, H, W, 3)``,
    resized at read time when ``short_side`` is given (bilinear, antialiased, long side floored)."""

    backend = "frames"

    def __init__(self, path: str | Path, short_side: int | None = None):
        self.path = Path(path)
        self.files = frame_files(self.path)
        if not self.files:
            raise VideoDecodeError(self.path, f"frame folder without {'/'.join(FRAME_SUFFIXES)} images")
        self.num_frames = len(self.files)
        self.fps = FRAME_FOLDER_FPS
        self.short_side = short_side

    def get_frames(self, indices: Sequence[int]) -> torch.Tensor:
        out, cache = [], {}
        for i in check_indices(self.path, indices, self.num_frames).tolist():
            if i not in cache:
                try:
                    img = decode_image(read_file(str(self.files[i])), mode=ImageReadMode.RGB)  # (3, H, W)
                except RuntimeError as e:
                    raise VideoDecodeError(self.path, f"{self.files[i].name}: {e}") from e
                if self.short_side:
                    size = short_side_size(img.shape[1], img.shape[2], self.short_side)
                    img = F.interpolate(img[None].float(), size=size, mode="bilinear", align_corners=False,
                                        antialias=True)[0].round().clamp(0, 255).to(torch.uint8)
                cache[i] = img.permute(1, 2, 0)
            out.append(cache[i])
        shapes = {tuple(f.shape) for f in out}
        if len(shapes) > 1:
            raise VideoDecodeError(self.path, f"frames of different sizes {sorted(shapes)}")
        return torch.stack(out)
