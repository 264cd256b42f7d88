#!/usr/bin/env python
"""Move the flat ILSVRC-2012 validation images into class folders (``val/<wnid>/<image>``).

    python prepare_imagenet_val.py VAL_DIR GROUND_TRUTH [--devkit DEVKIT_DIR] [--dry-run] [--copy] [--no-check]

GROUND_TRUTH is detected from its lines:
  * ``<image> <class>`` or ``<image>,<class> ...``: one image per line, the image with or without its
    extension, e.g. a valprep-style list (``ILSVRC2012_val_00000001.JPEG n01751748``) or Kaggle's
    ``LOC_val_solution.csv`` (header ``ImageId,PredictionString``; the first token after the comma is the wnid);
  * one integer per line: the devkit's ``ILSVRC2012_validation_ground_truth.txt`` (line i is the ILSVRC2012_ID
    of ``ILSVRC2012_val_<i:08d>.JPEG``); ``--devkit`` must then name the unpacked ``ILSVRC2012_devkit_t12``
    folder, whose ``data/meta.mat`` maps IDs to wnids.

Images that are listed but absent are reported as missing; images PIL cannot decode are reported as broken and
left where they are; images in VAL_DIR that the list does not name are reported as unlisted. Re-running is
safe: images already in their class folder are counted, not moved again. Exit status 1 if any image is
missing or broken, else 0.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

IMAGE_SUFFIXES = {".jpeg", ".jpg", ".png"}
_HEADER_FIRST_FIELDS = {"imageid", "image", "file", "filename", "path"}


def _stem(name: str) -> str:
    base = os.path.basename(name.strip())
    root, ext = os.path.splitext(base)
    return root if ext.lower() in IMAGE_SUFFIXES else base


def _devkit_id_to_wnid(devkit: Path) -> dict[int, str]:
    """ILSVRC2012_ID -> wnid of the 1000 leaf synsets in ``devkit/data/meta.mat`` (as torchvision's ImageNet)."""
    import scipy.io

    meta_mat = devkit / "data" / "meta.mat"
    if not meta_mat.is_file():
        raise FileNotFoundError(f"{meta_mat} not found (expected the unpacked ILSVRC2012_devkit_t12 folder)")
    synsets = scipy.io.loadmat(str(meta_mat), squeeze_me=True)["synsets"]
    # fields: ILSVRC2012_ID, WNID, words, gloss, num_children, ...; leaves (num_children == 0) are the classes
    return {int(s[0]): str(s[1]) for s in synsets if int(s[4]) == 0}


def read_ground_truth(path: str | Path, devkit: str | Path | None = None) -> dict[str, str]:
    """Map image stem (``ILSVRC2012_val_00000001``) -> class folder name (wnid). Errors name ``file:line``."""
    path = Path(path)
    mapping: dict[str, str] = {}
    ids: list[tuple[int, int]] = []
    with open(path) as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            where = f"{path}:{lineno}"
            if "," in line:
                name, rest = line.split(",", 1)
                fields = [name.strip(), *rest.split()]
            else:
                fields = line.split()
            if not mapping and not ids and fields[0].lower() in _HEADER_FIRST_FIELDS:
                continue
            if len(fields) == 1 and fields[0].isdigit():
                if mapping:
                    raise ValueError(f"{where}: a bare class id among '<image> <class>' lines")
                ids.append((lineno, int(fields[0])))
                continue
            if len(fields) < 2 or not fields[0] or ids:
                raise ValueError(f"{where}: expected '<image> <class>', '<image>,<class> ...' or one class id")
            cls = fields[1]
            if "/" in cls or "\\" in cls or cls in (".", ".."):
                raise ValueError(f"{where}: class {cls!r} is not a folder name")
            mapping[_stem(fields[0])] = cls
    if ids:
        if devkit is None:
            raise ValueError(f"{path} holds devkit class ids (one integer per line); pass --devkit DEVKIT_DIR")
        id_to_wnid = _devkit_id_to_wnid(Path(devkit))
        for n, (lineno, cid) in enumerate(ids, start=1):
            if cid not in id_to_wnid:
                raise ValueError(f"{path}:{lineno}: class id {cid} is not in {devkit}/data/meta.mat")
            mapping[f"ILSVRC2012_val_{n:08d}"] = id_to_wnid[cid]
    if not mapping:
        raise ValueError(f"{path}: no ground-truth lines")
    return mapping


def _readable(p: Path) -> bool:
    try:
        with Image.open(p) as img:
            img.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False
    return True


@dataclass
class Report:
    moved: int = 0
    already: int = 0
    missing: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)
    unlisted: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [
            f"moved {self.moved}, already in place {self.already}, missing {len(self.missing)}, "
            f"broken {len(self.broken)}, unlisted {len(self.unlisted)}"
        ]
        for label, items in (("missing", self.missing), ("broken", self.broken), ("unlisted", self.unlisted)):
            lines += [f"  {label}: {x}" for x in items[:20]]
            if len(items) > 20:
                lines.append(f"  ... and {len(items) - 20} more {label}")
        return "\n".join(lines)


def prepare_val(
    val_dir: str | Path, mapping: dict[str, str], dry_run: bool = False, copy: bool = False, check: bool = True
) -> Report:
    """Move (or copy) ``val_dir/<image>`` to ``val_dir/<class>/<image>`` for every image in ``mapping``."""
    val_dir = Path(val_dir)
    if not val_dir.is_dir():
        raise FileNotFoundError(f"validation folder {val_dir} does not exist")
    flat = {_stem(p.name): p for p in val_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES}
    rep = Report(unlisted=sorted(p.name for s, p in flat.items() if s not in mapping))
    for stem, cls in sorted(mapping.items()):
        src = flat.get(stem)
        if src is None:
            placed = val_dir / cls
            if placed.is_dir() and any(placed.glob(stem + ".*")):
                rep.already += 1
            else:
                rep.missing.append(stem)
            continue
        if check and not _readable(src):
            rep.broken.append(src.name)
            continue
        rep.moved += 1
        if dry_run:
            continue
        (val_dir / cls).mkdir(exist_ok=True)
        (shutil.copy2 if copy else shutil.move)(src, val_dir / cls / src.name)
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("val_dir", type=Path, help="folder holding the flat validation images")
    ap.add_argument("ground_truth", type=Path, help="ground-truth file (see above)")
    ap.add_argument("--devkit", type=Path, default=None, help="unpacked ILSVRC2012_devkit_t12 folder")
    ap.add_argument("--dry-run", action="store_true", help="report only, move nothing")
    ap.add_argument("--copy", action="store_true", help="copy instead of moving")
    ap.add_argument("--no-check", action="store_true", help="do not decode each image to detect broken files")
    args = ap.parse_args(argv)
    mapping = read_ground_truth(args.ground_truth, args.devkit)
    rep = prepare_val(args.val_dir, mapping, dry_run=args.dry_run, copy=args.copy, check=not args.no_check)
    print(("[dry run] " if args.dry_run else "") + rep.summary())
    return 1 if rep.missing or rep.broken else 0


if __name__ == "__main__":
    sys.exit(main())
