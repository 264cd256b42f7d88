"""``VideoDataConfig``: clip sampling, augmentation and decoding settings of a video dataset.

Defaults are the official TimeSformer 8x32 Kinetics recipe (``configs/Kinetics/TimeSformer_divST_8x32_224.yaml``
+ ``config/defaults.py``): 8 frames, sampling rate 32, train short side U[256, 320] -> random 224 crop +
flip, test 1 clip x 3 crops at 224, mean 0.45 / std 0.225.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ...utils.errors import UserInputError
from .augment import ClipAugment, rand_augment
from .decode import BACKENDS

SPLITS = ("train", "val", "test")


def augment_problems(cfg: VideoDataConfig) -> list[str]:
    """What is wrong with the augmentation keys of ``cfg``, one line each."""
    problems = []
    if cfg.rand_augment is not None:
        try:
            if not cfg.rand_augment.startswith("rand"):
                raise ValueError
            rand_augment(cfg.rand_augment, cfg.crop_size)
        except Exception:
            problems.append(f"rand_augment must be a timm RandAugment string such as 'rand-m7-n4-mstd0.5-inc1', "
                            f"got {cfg.rand_augment!r}")
    if cfg.rrc_scale is not None and not (len(cfg.rrc_scale) == 2 and 0 < cfg.rrc_scale[0] <= cfg.rrc_scale[1]):
        problems.append(f"rrc_scale must be (min, max) with 0 < min <= max, got {cfg.rrc_scale}")
    if not (len(cfg.rrc_ratio) == 2 and 0 < cfg.rrc_ratio[0] <= cfg.rrc_ratio[1]):
        problems.append(f"rrc_ratio must be (min, max) with 0 < min <= max, got {cfg.rrc_ratio}")
    if not 0.0 <= cfg.random_erasing <= 1.0:
        problems.append(f"random_erasing is a probability in [0, 1], got {cfg.random_erasing}")
    if cfg.repeated_aug < 1:
        problems.append(f"repeated_aug must be >= 1, got {cfg.repeated_aug}")
    return problems


@dataclass
class VideoDataConfig:
    """Settings of :class:`~spatiotemporal.data.video.dataset.VideoClipDataset`.

    ``sampling_rate`` is the frame stride at ``target_fps`` (native fps when None); ``test_crop_size``
    defaults to ``crop_size``; ``decode_short_side`` resizes at decode time (None keeps the file's size);
    ``decode_threads`` is decord's thread count per reader (1 suits DataLoader workers);
    ``path_prefix`` is joined to ``root`` for relative CSV paths (TimeSformer ``DATA.PATH_PREFIX``; with
    ``annotation="ssv2"``, the folder of the videos or frame folders). A video path may be a frame folder.
    ``sampling="segments"``: TSN-style, one frame per segment of the whole video (random in training, the middle
    at test time), as the official TimeSformer samples Something-Something V2.

    Clip-consistent training augmentations (all off by default; :mod:`.augment`): ``rand_augment`` a timm
    RandAugment string (``rand-m7-n4-mstd0.5-inc1``); ``rrc_scale`` / ``rrc_ratio`` a relative-scale random resized
    crop of the decoded frames (area fraction, aspect), which replaces ``train_jitter_scales``; ``random_erasing``
    timm's erasing probability (one box per clip); ``repeated_aug`` N augmented clips of each decoded video
    (a batch of B videos holds B * N clips). Mixup / cutmix / label smoothing are the pipeline's ``data`` keys.
    """

    num_frames: int = 8
    sampling_rate: int = 32
    target_fps: float | None = None
    train_jitter_scales: tuple[int, int] = (256, 320)
    crop_size: int = 224
    test_crop_size: int | None = None
    test_num_clips: int = 1
    test_num_crops: int = 3
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    random_flip: bool = True
    backend: str = "auto"
    decode_short_side: int | None = None
    decode_threads: int = 1
    train_csv: str = "train.csv"
    val_csv: str = "val.csv"
    test_csv: str = "test.csv"
    class_file: str = "classes.txt"
    path_prefix: str | None = None
    annotation: str = "csv"  # csv: {split}.csv + classes.txt | ssv2: SSv2 JSON; the pipeline sets it from --data
    sampling: str = "stride"  # stride: num_frames at sampling_rate (Kinetics) | segments: one per segment (SSv2)
    multi_label: bool = False  # labels 'path l1;l2' -> multi-hot targets (BCE, mAP)
    rand_augment: str | None = None
    rrc_scale: tuple[float, float] | None = None
    rrc_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    random_erasing: float = 0.0
    repeated_aug: int = 1

    def __post_init__(self) -> None:
        self.train_jitter_scales = tuple(int(s) for s in self.train_jitter_scales)  # type: ignore[assignment]
        self.mean = tuple(float(m) for m in self.mean)  # type: ignore[assignment]
        self.std = tuple(float(s) for s in self.std)  # type: ignore[assignment]
        if self.rrc_scale is not None:
            self.rrc_scale = tuple(float(s) for s in self.rrc_scale)  # type: ignore[assignment]
        self.rrc_ratio = tuple(float(r) for r in self.rrc_ratio)  # type: ignore[assignment]
        problems = augment_problems(self)
        if self.num_frames < 1 or self.sampling_rate < 1:
            problems.append("num_frames and sampling_rate must be >= 1")
        if len(self.train_jitter_scales) != 2 or self.train_jitter_scales[0] > self.train_jitter_scales[1]:
            problems.append(f"train_jitter_scales must be (min, max), got {self.train_jitter_scales}")
        elif self.train_jitter_scales[0] < self.crop_size:
            problems.append(f"train_jitter_scales min {self.train_jitter_scales[0]} < crop_size {self.crop_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            problems.append("mean and std need 3 values, std > 0")
        if self.test_num_clips < 1 or self.test_num_crops < 1:
            problems.append("test_num_clips and test_num_crops must be >= 1")
        if self.backend not in BACKENDS:
            problems.append(f"backend must be one of {BACKENDS}, got {self.backend!r}")
        if self.annotation not in ("csv", "ssv2"):
            problems.append(f"annotation must be 'csv' or 'ssv2', got {self.annotation!r}")
        if self.sampling not in ("stride", "segments"):
            problems.append(f"sampling must be 'stride' or 'segments', got {self.sampling!r}")
        elif self.sampling == "segments" and self.test_num_clips != 1:
            problems.append("sampling 'segments' covers the whole video: test_num_clips must be 1")
        if self.target_fps is not None and self.target_fps <= 0:
            problems.append("target_fps must be > 0")
        if problems:
            raise UserInputError("invalid VideoDataConfig: " + "; ".join(problems))

    @property
    def augment(self) -> ClipAugment:
        """The clip-consistent training augmentations these settings enable."""
        return ClipAugment(self.rand_augment, self.rrc_scale, self.rrc_ratio, self.random_erasing)

    @property
    def eval_crop_size(self) -> int:
        return self.test_crop_size or self.crop_size

    @property
    def num_views(self) -> int:
        """Views per test video: ``test_num_clips * test_num_crops``."""
        return self.test_num_clips * self.test_num_crops

    def csv_name(self, split: str) -> str:
        if split not in SPLITS:
            raise UserInputError(f"unknown split {split!r}; expected one of {SPLITS}")
        return {"train": self.train_csv, "val": self.val_csv, "test": self.test_csv}[split]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VideoDataConfig:
        """Build from a (YAML) mapping; unknown keys are an error that lists the valid ones."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserInputError(f"unknown VideoDataConfig keys {unknown}; valid keys: {sorted(known)}")
        return cls(**d)
