"""2D segmentation sets in the folder layout of ADE20K-style datasets: ``images/<split>/NAME.(png|jpg|...)`` and
``masks/<split>/NAME.png`` (one label value per pixel), class names in ``class_names.txt`` (line ``k`` names label
value ``k``). ``train`` / ``val`` also match ``training`` / ``validation`` folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from ...utils.errors import SpatioUserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
SPLIT_FOLDERS = {"train": ("train", "training"), "val": ("val", "validation")}
CLASS_NAMES_FILE = "class_names.txt"


class SegFolderError(SpatioUserError, ValueError):
    """A 2D segmentation folder that does not follow the layout; the message names the path."""


@dataclass
class SegFolder:
    """``items[split]``: ``[{"image": path, "label": path}]`` sorted by name; ``class_names``."""

    root: Path
    class_names: list[str]
    items: dict[str, list[dict[str, str]]]


def _split_dir(root: Path, kind: str, split: str) -> Path | None:
    for name in SPLIT_FOLDERS[split]:
        if (root / kind / name).is_dir():
            return root / kind / name
    return None


def read_class_names(root: Path) -> list[str]:
    path = root / CLASS_NAMES_FILE
    if not path.is_file():
        raise SegFolderError(f"{path}: missing; expected one class name per line (line k names label value k)")
    names = [ln.strip() for ln in path.read_text(encoding="utf-8-sig").splitlines() if ln.strip()]
    if len(names) < 2:
        raise SegFolderError(f"{path}: expected at least 2 class names (background and one class), got {names}")
    return names


def load_seg_folder(root: str | Path) -> SegFolder:
    """Pair every image of ``images/<split>/`` with ``masks/<split>/<same stem>.png``; an image without its mask
    is an error naming it."""
    root = Path(root)
    if not root.is_dir():
        raise SegFolderError(f"{root}: not a folder (expected images/<split>/, masks/<split>/, {CLASS_NAMES_FILE})")
    names = read_class_names(root)
    items: dict[str, list[dict[str, str]]] = {}
    for split in SPLIT_FOLDERS:
        img_dir, mask_dir = _split_dir(root, "images", split), _split_dir(root, "masks", split)
        if img_dir is None:
            continue
        if mask_dir is None:
            raise SegFolderError(f"{root}: {img_dir.name} images but no masks/{img_dir.name}/ folder")
        pairs = []
        for img in sorted(p for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            mask = mask_dir / f"{img.stem}.png"
            if not mask.is_file():
                raise SegFolderError(f"{img}: no mask {mask}")
            pairs.append({"image": str(img), "label": str(mask)})
        items[split] = pairs
    if not items.get("train"):
        raise SegFolderError(f"{root}: no training images under images/train/ (or images/training/)")
    check_pair_sizes([p for pairs in items.values() for p in pairs])
    return SegFolder(root, names, items)


def _size(path: str) -> tuple[int, int]:
    """``(width, height)`` from the file's header (PIL reads no pixels here)."""
    try:
        with Image.open(path) as im:
            return im.size
    except (OSError, SyntaxError, ValueError) as e:
        raise SegFolderError(f"{path}: not a readable image ({type(e).__name__}: {e})") from None


def check_pair_sizes(pairs: list[dict[str, str]]) -> None:
    """Every mask has its image's size (read from the headers, before training): a :class:`SegFolderError` naming
    the first pair that differs and counting the others."""
    bad = []
    for p in pairs:
        si, sm = _size(p["image"]), _size(p["label"])
        if si != sm:
            bad.append((p, si, sm))
    if bad:
        (p, si, sm), more = bad[0], len(bad) - 1
        raise SegFolderError(f"{p['label']}: mask of {sm[0]}x{sm[1]} pixels for the image {p['image']} of "
                             f"{si[0]}x{si[1]}; expected one label per image pixel (same width x height)"
                             + (f"; {more} more pair(s) differ (e.g. {bad[1][0]['label']})" if more else ""))
