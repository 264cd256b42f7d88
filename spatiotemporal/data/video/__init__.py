"""Video data pipeline: Kinetics-layout CSVs, decord/PyAV clip decoding, TimeSformer sampling and
transforms, clip-consistent augmentations (RandAugment, random resized crop, random erasing, mixup, repeated
augmentation; ``augment.py``), a skip-tolerant dataset + loader, and two built-in sets: temporal order (with a
global light cue) and small-object motion (without one)."""

from .augment import ClipAugment, ClipMixup, clip_rand_augment, clip_random_erasing, clip_resized_crop
from .config import SPLITS, VideoDataConfig
from .dataset import VideoClipDataset, resolve_class_names
from .decode import (
    BACKENDS,
    DecodedClip,
    DecordVideo,
    PyAVVideo,
    VideoDecodeError,
    VideoSource,
    decord_available,
    open_video,
    read_clip,
)
from .loader import build_video_loader, collate_videos, video_worker_init
from .motion import ensure_motion_video_dataset, generate_motion_video_dataset
from .sampling import clip_indices, clip_span, spatial_crop_offsets, train_clip_indices, uniform_clip_indices
from .synthetic import (
    builtin_video_config,
    ensure_builtin_video_dataset,
    generate_builtin_video_dataset,
    write_mp4,
)
from .transforms import multi_crop_transform, resize_short_side, train_clip_transform
from .views import load_test_views

__all__ = [
    "BACKENDS",
    "SPLITS",
    "ClipAugment",
    "ClipMixup",
    "DecodedClip",
    "DecordVideo",
    "PyAVVideo",
    "VideoClipDataset",
    "VideoDataConfig",
    "VideoDecodeError",
    "VideoSource",
    "build_video_loader",
    "clip_rand_augment",
    "clip_random_erasing",
    "clip_resized_crop",
    "builtin_video_config",
    "clip_indices",
    "clip_span",
    "collate_videos",
    "decord_available",
    "ensure_builtin_video_dataset",
    "ensure_motion_video_dataset",
    "generate_builtin_video_dataset",
    "generate_motion_video_dataset",
    "load_test_views",
    "multi_crop_transform",
    "open_video",
    "read_clip",
    "resize_short_side",
    "resolve_class_names",
    "spatial_crop_offsets",
    "train_clip_indices",
    "train_clip_transform",
    "uniform_clip_indices",
    "video_worker_init",
    "write_mp4",
]
