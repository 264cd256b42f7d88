"""Configuration of the 2D image data pipeline (DeiT III defaults)."""

from __future__ import annotations

from dataclasses import dataclass

from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

from ...utils.errors import UserInputError

CROPS = ("rrc", "src")


@dataclass
class ImageDataConfig:
    """Image pipeline settings. Defaults are the DeiT III ImageNet-1k pretraining recipe.

    crop: "rrc" (RandomResizedCrop, scale ``rrc_scale``) or "src" (Simple Random Crop: short-side resize,
        ``src_padding`` reflect padding, random square crop).
    three_augment: one of {grayscale, solarize, gaussian blur} per image (timm ``auto_augment='3a'``).
    auto_augment: another timm AA/RandAugment string (e.g. "rand-m9-mstd0.5-inc1", the fine-tuning recipe),
        used only when ``three_augment`` is False; colour jitter is then off, as in timm.
    eval_crop_ratio: evaluation resizes to ``int(img_size / eval_crop_ratio)`` then centre-crops ``img_size``.
    repeated_aug: repeats per index in the RA sampler (3 = DeiT III; 1 = off).
    ra_round_to: the RA sampler keeps ``len(ds) // ra_round_to * ra_round_to`` samples per epoch over all
        ranks (256 = DeiT; 1 for small sets).
    """

    img_size: int = 224
    crop: str = "rrc"
    three_augment: bool = True
    auto_augment: str | None = None
    color_jitter: float = 0.3
    hflip: float = 0.5
    rrc_scale: tuple[float, float] = (0.08, 1.0)
    rrc_ratio: tuple[float, float] = (3.0 / 4.0, 4.0 / 3.0)
    src_padding: int = 4
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = IMAGENET_DEFAULT_MEAN
    std: tuple[float, float, float] = IMAGENET_DEFAULT_STD
    eval_crop_ratio: float = 1.0
    num_workers: int = 4
    repeated_aug: int = 3
    ra_round_to: int = 256

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise UserInputError(f"ImageDataConfig.crop must be one of {CROPS}, got {self.crop!r}")
        if self.img_size <= self.src_padding:
            raise UserInputError(
                f"ImageDataConfig.img_size={self.img_size} must exceed src_padding={self.src_padding}"
            )
        if not 0.0 < self.eval_crop_ratio <= 1.0:
            raise UserInputError(f"ImageDataConfig.eval_crop_ratio must be in (0, 1], got {self.eval_crop_ratio}")
        if self.repeated_aug < 1:
            raise UserInputError(f"ImageDataConfig.repeated_aug must be >= 1, got {self.repeated_aug}")
        self.mean, self.std = tuple(self.mean), tuple(self.std)
        self.rrc_scale, self.rrc_ratio = tuple(self.rrc_scale), tuple(self.rrc_ratio)
