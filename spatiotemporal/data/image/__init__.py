"""2D image data pipeline: ImageNet-layout / CSV datasets, DeiT III transforms, Mixup, RA sampler,
and the built-in shapes set."""

from .build import build_image_datasets, image_class_names, image_root
from .builtin import (
    BUILTIN_CLASSES,
    builtin_image_config,
    ensure_builtin_image_dataset,
)
from .collate import collate_images
from .config import ImageDataConfig
from .csv_list import CsvImageDataset
from .folder import ImageFolderDataset
from .image_list import ImageListDataset, ImageReadError, load_rgb
from .mixup import OddBatchMixup, build_mixup
from .ra_sampler import RASampler
from .transforms import SimpleRandomCrop, eval_transform, three_augment, train_transform

__all__ = [
    "BUILTIN_CLASSES",
    "CsvImageDataset",
    "ImageDataConfig",
    "ImageFolderDataset",
    "ImageListDataset",
    "OddBatchMixup",
    "RASampler",
    "SimpleRandomCrop",
    "build_image_datasets",
    "image_class_names",
    "image_root",
    "build_mixup",
    "builtin_image_config",
    "collate_images",
    "ensure_builtin_image_dataset",
    "eval_transform",
    "ImageReadError",
    "load_rgb",
    "three_augment",
    "train_transform",
]
