"""Base dataset over a list of ``(path, label)`` image files, with per-sample seeding and skip-and-count."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
import torchvision.transforms as T
from PIL import Image
from torch.utils.data import Dataset

from ...utils.errors import SpatioUserError
from ..seeding import seed_item

log = logging.getLogger(__name__)

# Errors meaning "not a readable image" (UnidentifiedImageError and truncated files are OSError).
UNREADABLE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class ImageReadError(SpatioUserError, OSError):
    """An image file that cannot be read (missing, truncated, not an image); the message names it."""


def load_rgb(path: str) -> Image.Image:
    """Open an image file fully and convert it to RGB; :class:`ImageReadError` naming the file if it cannot."""
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except UNREADABLE_ERRORS as e:
        raise ImageReadError(f"cannot read image {path}: {type(e).__name__}: {e}") from e


class ImageListDataset(Dataset):
    """Labelled image files; label ``i`` is ``class_names[i]``.

    ``__getitem__(i)`` returns ``{"image": (3, H, W) float32 tensor, "label": int, "index": i}``. The sample's
    random augmentation is a function of ``(seed, epoch, i)``: ``seed_item`` seeds python, NumPy and torch's
    global RNGs first. An unreadable file gives ``{"skipped": path, "reason": str, "index": i}`` (drop it with
    ``collate_images``) when ``skip_unreadable``, else a ``RuntimeError`` naming the file.
    """

    def __init__(
        self,
        samples: Sequence[tuple[str | Path, int]],
        class_names: Sequence[str],
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        seed: int = 0,
        skip_unreadable: bool = True,
    ) -> None:
        self.samples = [(str(path), int(label)) for path, label in samples]
        self.class_names = list(class_names)
        self.transform = transform if transform is not None else T.ToTensor()
        self.seed = int(seed)
        self.epoch = 0
        self.skip_unreadable = skip_unreadable

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def targets(self) -> list[int]:
        return [label for _, label in self.samples]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        seed_item(self.seed, self.epoch, index)
        path, label = self.samples[index]
        try:
            img = load_rgb(path)
        except ImageReadError as e:
            if not self.skip_unreadable:
                raise
            reason = f"{type(e.__cause__).__name__}: {e.__cause__}"
            log.warning("skipping unreadable image %s (%s)", path, reason)
            return {"skipped": str(path), "reason": reason, "index": index}
        return {"image": self.transform(img), "label": int(label), "index": index}
