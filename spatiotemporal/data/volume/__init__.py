"""3D volume pipeline: decathlon JSON, MONAI transforms, input checks, cached seeded datasets, phantom set."""

from .checks import check_case, validate_datalist
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
from .phantom import (
    PHANTOM_CLASS_NAMES,
    PhantomSpec,
    builtin_volume_config,
    ensure_builtin_volume_dataset,
    make_phantom_case,
    write_phantom_dataset,
)
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
