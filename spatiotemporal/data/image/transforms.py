"""DeiT III image transforms: RRC or Simple Random Crop, flip, 3-Augment, colour jitter, normalise.

Train: primary crop -> hflip -> one of {grayscale, solarize, blur} (timm ``auto_augment='3a'``) ->
ColorJitter(cj, cj, cj) -> ToTensor -> Normalize. With ``crop="rrc"`` this is pixel-identical to
``timm.data.create_transform(size, is_training=True, auto_augment='3a', color_jitter=cj, interpolation=...)``.
Eval: Resize(int(size / eval_crop_ratio)) -> CenterCrop(size) -> ToTensor -> Normalize.
All randomness comes from python ``random`` and torch's global RNG (seeded per sample by ``seed_item``).
Outputs are ``(3, size, size)`` float32 tensors.
"""

from __future__ import annotations

import torch
import torchvision.transforms as T
import torchvision.transforms.functional as F
from PIL import Image
from timm.data.auto_augment import augment_and_mix_transform, auto_augment_transform, rand_augment_transform
from timm.data.transforms import (
    MaybeToTensor,
    RandomResizedCropAndInterpolation,
    str_to_interp_mode,
    str_to_pil_interp,
)

from ...utils.errors import UserInputError
from .config import ImageDataConfig


class SimpleRandomCrop:
    """Simple Random Crop (DeiT III ``--src``) of a PIL image to ``(size, size)``.

    Resize the short side to ``size`` keeping the aspect ratio (long side ``int(size * long / short)``, as
    ``torchvision.transforms.Resize(size)``), reflect-pad ``padding`` pixels on every side, then take a random
    square crop, as ``torchvision.transforms.RandomCrop(size, padding, padding_mode='reflect')``, drawing the
    same ``torch.randint`` numbers in the same order.
    """

    def __init__(self, size: int, padding: int = 4, interpolation: str = "bicubic") -> None:
        if size <= padding:
            raise UserInputError(f"SimpleRandomCrop: size={size} must exceed padding={padding} (reflect padding)")
        self.size, self.padding = int(size), int(padding)
        self.interpolation = str_to_interp_mode(interpolation)

    def resized_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` after the short-side resize of a ``width x height`` input."""
        short, long = sorted((width, height))
        new_long = int(self.size * long / short)
        return (self.size, new_long) if width <= height else (new_long, self.size)

    def padded_size(self, width: int, height: int) -> tuple[int, int]:
        """``(width, height)`` of the resized and padded image the crop is taken from."""
        w, h = self.resized_size(width, height)
        return w + 2 * self.padding, h + 2 * self.padding

    def crop_box(self, width: int, height: int) -> tuple[int, int, int, int]:
        """Draw a box ``(top, left, height, width)`` (padded coordinates) for a ``width x height`` input."""
        pw, ph = self.padded_size(width, height)
        top = int(torch.randint(0, ph - self.size + 1, size=(1,)).item())
        left = int(torch.randint(0, pw - self.size + 1, size=(1,)).item())
        return top, left, self.size, self.size

    def __call__(self, img: Image.Image) -> Image.Image:
        top, left, th, tw = self.crop_box(*img.size)
        w, h = self.resized_size(*img.size)
        img = F.resize(img, [h, w], interpolation=self.interpolation)
        img = F.pad(img, self.padding, padding_mode="reflect")
        return F.crop(img, top, left, th, tw)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(size={self.size}, padding={self.padding}, interpolation={self.interpolation})"


def aa_hparams(cfg: ImageDataConfig) -> dict:
    """The hparams timm's ``create_transform`` passes to its AutoAugment / RandAugment builders."""
    hp: dict = {
        "translate_const": int(cfg.img_size * 0.45),
        "img_mean": tuple(min(255, round(255 * x)) for x in cfg.mean),
    }
    if cfg.interpolation and cfg.interpolation != "random":
        hp["interpolation"] = str_to_pil_interp(cfg.interpolation)
    return hp


def three_augment(cfg: ImageDataConfig):
    """timm AutoAugment '3a': one of Solarize(128), Desaturate (grayscale), GaussianBlur(U(0.1, 2)) per image."""
    return auto_augment_transform("3a", aa_hparams(cfg))


def primary_crop(cfg: ImageDataConfig):
    """The selected random crop: timm RRC (``cfg.rrc_scale``, ``cfg.rrc_ratio``) or ``SimpleRandomCrop``."""
    if cfg.crop == "src":
        return SimpleRandomCrop(cfg.img_size, cfg.src_padding, cfg.interpolation)
    return RandomResizedCropAndInterpolation(
        cfg.img_size, scale=cfg.rrc_scale, ratio=cfg.rrc_ratio, interpolation=cfg.interpolation
    )


def _other_auto_augment(name: str, cfg: ImageDataConfig):
    hp = aa_hparams(cfg)
    if name.startswith("rand"):
        return rand_augment_transform(name, hp)
    if name.startswith("augmix"):
        return augment_and_mix_transform(name, {**hp, "translate_pct": 0.3})
    return auto_augment_transform(name, hp)


def normalize(cfg: ImageDataConfig) -> list:
    """PIL -> ``(3, H, W)`` float32 tensor in [0, 1] -> normalised by ``cfg.mean`` / ``cfg.std``."""
    return [MaybeToTensor(), T.Normalize(mean=torch.tensor(cfg.mean), std=torch.tensor(cfg.std))]


def train_transform(cfg: ImageDataConfig) -> T.Compose:
    """Training transform, PIL RGB image -> ``(3, img_size, img_size)`` float32 tensor."""
    tfl = [primary_crop(cfg)]
    if cfg.hflip > 0:
        tfl.append(T.RandomHorizontalFlip(p=cfg.hflip))
    jitter = cfg.color_jitter > 0
    if cfg.three_augment:
        tfl.append(three_augment(cfg))
    elif cfg.auto_augment:
        tfl.append(_other_auto_augment(cfg.auto_augment, cfg))
        jitter = False  # timm switches colour jitter off under AA / RandAugment
    if jitter:
        cj = float(cfg.color_jitter)
        tfl.append(T.ColorJitter(cj, cj, cj))
    return T.Compose(tfl + normalize(cfg))


def eval_transform(cfg: ImageDataConfig) -> T.Compose:
    """Evaluation transform: Resize(int(size / eval_crop_ratio)) + CenterCrop(size) -> ``(3, size, size)``."""
    resize = int(cfg.img_size / cfg.eval_crop_ratio)
    return T.Compose(
        [
            T.Resize(resize, interpolation=str_to_interp_mode(cfg.interpolation)),
            T.CenterCrop(cfg.img_size),
            *normalize(cfg),
        ]
    )
