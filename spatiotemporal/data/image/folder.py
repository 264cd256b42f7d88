"""ImageNet-layout folder dataset: ``<root>/<class>/<image>``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from ...utils.errors import UserInputError
from .image_list import ImageListDataset


class ImageFolderDataset(ImageListDataset):
    """Images in class folders, e.g. ``train/n01440764/*.JPEG``; classes are the sorted folder names.

    Pass the training set's ``class_names`` to a validation folder so that labels agree; a validation class
    folder unknown to them is an error. Items as ``ImageListDataset``.
    """

    def __init__(
        self,
        root: str | Path,
        transform: Callable[[Image.Image], torch.Tensor] | None = None,
        seed: int = 0,
        class_names: Sequence[str] | None = None,
        skip_unreadable: bool = True,
    ) -> None:
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(
                f"image folder {root} does not exist (expected {root}/<class>/<image files>)"
            )
        found, _ = find_classes(root)
        names = found if class_names is None else list(class_names)
        unknown = sorted(set(found) - set(names))
        if unknown:
            raise UserInputError(f"{root}: class folders {unknown[:5]} are not among the training classes")
        class_to_idx = {name: i for i, name in enumerate(names)}
        samples = make_dataset(root, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True)
        if not samples:
            raise FileNotFoundError(f"no image files ({', '.join(IMG_EXTENSIONS)}) under {root}/<class>/")
        super().__init__(samples, names, transform, seed, skip_unreadable)
        self.root = root
