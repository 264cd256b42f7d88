"""2D segmentation data: PNG/JPEG images with PNG masks (folder layout), MONAI transforms, the built-in set of
CT-phantom slices."""

from .builtin import ensure_builtin_seg_dataset
from .folder import SegFolder, SegFolderError, load_seg_folder, read_class_names
from .transforms import SegImageConfig, image_transforms, train_transforms, val_transforms

__all__ = ["SegFolder", "SegFolderError", "SegImageConfig", "ensure_builtin_seg_dataset", "image_transforms",
           "load_seg_folder", "read_class_names", "train_transforms", "val_transforms"]
