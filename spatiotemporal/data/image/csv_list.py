"""CSV image list: ``path,label`` lines, paths relative to the CSV's folder, labels ints or class names."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image

from .image_list import ImageListDataset


def _is_int(s: str) -> bool:
    try:
        int(s)
    except ValueError:
        return False
    return True


def read_image_csv(
    csv_path: str | Path, class_to_idx: dict[str, int] | None = None
) -> tuple[list[tuple[str, int]], list[str]]:
    """Parse a ``path,label`` CSV into ``(samples, classes)``.

    An optional header ``path,label`` is skipped, as are blank lines and lines starting with ``#``. Labels are
    all non-negative integers (``classes`` = "0".."max") or all class names (mapped by ``class_to_idx``, else
    by their sorted order). A malformed line raises ``ValueError`` naming ``file:line``.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise FileNotFoundError(
            f"image list {csv_path} does not exist (expected a CSV of 'path,label' lines)"
        )
    base = csv_path.parent
    rows: list[tuple[int, str, str]] = []
    int_labels: bool | None = None
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                break
            except csv.Error as e:
                raise ValueError(f"{csv_path}:{reader.line_num}: malformed CSV line ({e})") from e
            lineno = reader.line_num
            if not fields or not "".join(fields).strip() or fields[0].lstrip().startswith("#"):
                continue
            fields = [x.strip() for x in fields]
            where = f"{csv_path}:{lineno}"
            if not rows and [x.lower() for x in fields] == ["path", "label"]:
                continue
            if len(fields) != 2 or not fields[0] or not fields[1]:
                raise ValueError(f"{where}: expected 'path,label', got {','.join(fields)!r}")
            path, label = fields
            this_int = _is_int(label)
            if int_labels is None:
                int_labels = this_int
            elif this_int != int_labels:
                kind = "integer" if int_labels else "class-name"
                raise ValueError(
                    f"{where}: label {label!r} mixes with the {kind} labels of the earlier lines"
                )
            if this_int and int(label) < 0:
                raise ValueError(f"{where}: label {label!r} must be a non-negative integer")
            rows.append((lineno, path, label))
    if not rows:
        raise ValueError(f"{csv_path}: no 'path,label' lines")
    if int_labels:
        labels = [int(label) for _, _, label in rows]
        classes = [str(i) for i in range(max(labels) + 1)]
        if class_to_idx is not None:
            classes = sorted(class_to_idx, key=class_to_idx.__getitem__)
            too_big = [(n, label) for (n, _, _), label in zip(rows, labels) if label >= len(classes)]
            if too_big:
                raise ValueError(
                    f"{csv_path}:{too_big[0][0]}: label {too_big[0][1]} >= {len(classes)} classes"
                )
    else:
        if class_to_idx is None:
            class_to_idx = {c: i for i, c in enumerate(sorted({label for _, _, label in rows}))}
        for n, _, label in rows:
            if label not in class_to_idx:
                raise ValueError(f"{csv_path}:{n}: class {label!r} is not among the training classes")
        labels = [class_to_idx[label] for _, _, label in rows]
        classes = sorted(class_to_idx, key=class_to_idx.__getitem__)
    samples = [(str(base / path), label) for (_, path, _), label in zip(rows, labels)]
    return samples, classes


class CsvImageDataset(ImageListDataset):
    """Images listed in a ``path,label`` CSV (see ``read_image_csv``); items as ``ImageListDataset``."""

    def __init__(
        self,
        csv_path: str | Path,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        seed: int = 0,
        class_to_idx: dict[str, int] | None = None,
        skip_unreadable: bool = True,
    ) -> None:
        samples, classes = read_image_csv(csv_path, class_to_idx)
        super().__init__(samples, classes, transform, seed, skip_unreadable)
        self.csv_path = Path(csv_path)
