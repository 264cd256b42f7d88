"""Images listed in a labels file (``path,label`` / ``path label`` lines, rules in ``data.labels_csv``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image

from ..labels_csv import read_labels_csv
from .image_list import ImageListDataset


class CsvImageDataset(ImageListDataset):
    """Images of a labels file; paths relative to the file's folder. Items as ``ImageListDataset``.

    ``class_names``: the training classes, so that a validation list's names and indices agree with them
    (default: inferred from this file's labels).
    """

    def __init__(
        self,
        csv_path: str | Path,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        seed: int = 0,
        class_names: Sequence[str] | None = None,
        skip_unreadable: bool = True,
    ) -> None:
        samples, names = read_labels_csv(csv_path, class_names=class_names)
        super().__init__(samples, names, transform, seed, skip_unreadable)
        self.csv_path = Path(csv_path)
