"""3D volume pipeline: decathlon JSON, MONAI transforms, input checks, cached seeded datasets, phantom set."""

from .brats_layout import BRATS_CHANNEL_NAMES, BRATS_CLASS_NAMES, load_brats_folder
from .checks import check_case, image_channels, image_files, load_header, validate_datalist
from .datalist import (
    DEFAULT_JSON_NAME,
    VolumeDataError,
    VolumeDatalist,
    case_id,
    fold_split,
    load_volume_datalist,
    write_datalist,
)
from .dataset import (
    SeededVolumeDataset,
    build_volume_datasets,
    disk_cache_dir,
    estimate_case_bytes,
    model_space_shape,
    volume_collate,
)
from .inverse import preprocess_volume, restore_label_map, save_label_map
from .mri_phantom import (
    MRI_CHANNELS,
    MRI_CLASS_NAMES,
    MriPhantomSpec,
    ensure_builtin_mri_dataset,
    make_mri_case,
    write_mri_phantom_dataset,
)
from .phantom import (
    PHANTOM_CLASS_NAMES,
    PhantomSpec,
    builtin_volume_config,
    ensure_builtin_volume_dataset,
    make_phantom_case,
    write_phantom_dataset,
)
from .regions import REGION_LABELS, REGION_NAMES, labels_to_regions, regions_to_labels
from .transforms import (
    VolumeDataConfig,
    geometry_transforms,
    inference_transforms,
    random_transforms,
    train_deterministic_transforms,
    train_transforms,
    val_transforms,
)

__all__ = [
    "BRATS_CHANNEL_NAMES",
    "BRATS_CLASS_NAMES",
    "image_files",
    "load_brats_folder",
    "MRI_CHANNELS",
    "MRI_CLASS_NAMES",
    "MriPhantomSpec",
    "REGION_LABELS",
    "REGION_NAMES",
    "ensure_builtin_mri_dataset",
    "image_channels",
    "labels_to_regions",
    "load_header",
    "make_mri_case",
    "regions_to_labels",
    "write_mri_phantom_dataset",
    "DEFAULT_JSON_NAME",
    "PHANTOM_CLASS_NAMES",
    "PhantomSpec",
    "SeededVolumeDataset",
    "VolumeDataConfig",
    "VolumeDataError",
    "VolumeDatalist",
    "build_volume_datasets",
    "builtin_volume_config",
    "case_id",
    "check_case",
    "disk_cache_dir",
    "ensure_builtin_volume_dataset",
    "estimate_case_bytes",
    "fold_split",
    "geometry_transforms",
    "inference_transforms",
    "load_volume_datalist",
    "make_phantom_case",
    "model_space_shape",
    "preprocess_volume",
    "random_transforms",
    "restore_label_map",
    "save_label_map",
    "train_deterministic_transforms",
    "train_transforms",
    "val_transforms",
    "validate_datalist",
    "volume_collate",
    "write_datalist",
    "write_phantom_dataset",
]
