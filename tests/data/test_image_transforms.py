"""DeiT III train / eval transforms: 3-Augment ops, colour jitter, pipeline order, equality with timm."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image, ImageFilter
from timm.data import create_transform
from timm.data.auto_augment import AutoAugment, auto_augment_transform
from timm.data.transforms import MaybeToTensor, RandomResizedCropAndInterpolation

from spatiotemporal.data.image import (
    ImageDataConfig,
    SimpleRandomCrop,
    eval_transform,
    three_augment,
    train_transform,
)
from spatiotemporal.data.seeding import seed_item


def _photo(w: int = 40, h: int = 30, seed: int = 0) -> Image.Image:
    """A colourful test picture: per-channel gradients plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([255 * xx / w, 255 * yy / h, 255 * (1 - xx / w)], -1)
    img = np.clip(base + rng.normal(0, 25, size=(h, w, 3)), 0, 255).astype(np.uint8)
    return Image.fromarray(img, "RGB")


def _op(name: str):
    cfg = ImageDataConfig(img_size=32)
    ops = [sub[0] for sub in three_augment(cfg).policy]
    return next(op for op in ops if op.name == name)


def test_three_augment_has_the_three_deit_ops_at_p1():
    policy = three_augment(ImageDataConfig(img_size=32)).policy
    assert sorted(sub[0].name for sub in policy) == ["Desaturate", "GaussianBlurRand", "Solarize"]
    assert all(len(sub) == 1 and sub[0].prob == 1.0 for sub in policy)


def test_grayscale_op_gives_equal_channels():
    out = np.asarray(_op("Desaturate")(_photo()))
    assert out.shape == (30, 40, 3)
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    # PIL's luma of the input
    assert np.abs(out[..., 0].astype(int) - np.asarray(_photo().convert("L")).astype(int)).max() <= 1


def test_solarize_op_inverts_pixels_at_or_above_128():
    ramp = np.tile(np.arange(256, dtype=np.uint8)[None, :, None], (2, 1, 3))
    out = np.asarray(_op("Solarize")(Image.fromarray(ramp, "RGB")))
    expected = np.where(ramp >= 128, 255 - ramp, ramp)
    assert np.array_equal(out, expected)


def _high_freq_energy(a: np.ndarray) -> float:
    a = a.astype(np.float64).mean(-1)
    lap = 4 * a[1:-1, 1:-1] - a[:-2, 1:-1] - a[2:, 1:-1] - a[1:-1, :-2] - a[1:-1, 2:]
    return float((lap**2).mean())


def test_blur_op_reduces_high_frequency_energy_with_radius_uniform_0p1_to_2():
    checker = ((np.indices((32, 32)).sum(0) % 2) * 255).astype(np.uint8)
    img = Image.fromarray(np.stack([checker] * 3, -1), "RGB")
    op = _op("GaussianBlurRand")
    for s in range(5):
        random.seed(s)
        out = op(img)
        assert _high_freq_energy(np.asarray(out)) < 0.5 * _high_freq_energy(np.asarray(img))
        random.seed(s)
        radius = random.uniform(0.1, 2.0)  # DeiT's GaussianBlur(radius=U(0.1, 2.0))
        assert np.array_equal(np.asarray(out), np.asarray(img.filter(ImageFilter.GaussianBlur(radius=radius))))


def _which_op(out: np.ndarray, inp: np.ndarray) -> str:
    """Classify a 3-Augment output of an input whose pixels are all in [130, 250] with unequal channels.

    Solarize maps every pixel to <= 125; grayscale makes the channels equal; blur keeps pixels in [130, 250]
    and the channels unequal (a radius near 0.1 can leave the picture unchanged: "blur (no-op)").
    """
    gray = np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    solar = bool((out <= 125).all())
    if solar and not gray:
        return "solarize"
    if gray and not solar:
        return "gray"
    if not gray and not solar and (out >= 128).all():
        return "blur" if not np.array_equal(out, inp) else "blur (no-op)"
    return "other"


def test_exactly_one_op_per_image_each_about_a_third():
    rng = np.random.default_rng(0)
    inp = rng.integers(130, 251, size=(12, 12, 3)).astype(np.uint8)
    inp[..., 0] = 130 + (inp[..., 0] - 130) // 2  # channels differ
    img = Image.fromarray(inp, "RGB")
    aug = three_augment(ImageDataConfig(img_size=12))
    counts = {"solarize": 0, "gray": 0, "blur": 0, "blur (no-op)": 0, "other": 0}
    n = 600
    for i in range(n):
        seed_item(0, 0, i)
        counts[_which_op(np.asarray(aug(img)), inp)] += 1
    assert counts["other"] == 0, counts  # never two ops (e.g. grey and solarised) on one image
    assert counts["blur (no-op)"] <= 0.03 * n, counts  # so the images are not left un-augmented a third of the time
    counts["blur"] += counts.pop("blur (no-op)")
    for name in ("solarize", "gray", "blur"):  # binomial(600, 1/3): mean 200, sd 11.5
        assert 150 <= counts[name] <= 250, counts


def test_color_jitter_is_0p3_on_brightness_contrast_saturation_only():
    tf = train_transform(ImageDataConfig(img_size=16))
    (cj,) = [t for t in tf.transforms if isinstance(t, T.ColorJitter)]
    assert cj.brightness == cj.contrast == cj.saturation == (0.7, 1.3)
    assert cj.hue is None
    # On a flat grey picture contrast and saturation are no-ops, so the output / input ratio is the brightness
    img = Image.new("RGB", (4, 4), (100, 100, 100))
    ratios = []
    for i in range(300):
        seed_item(1, 0, i)
        ratios.append(np.asarray(cj(img)).mean() / 100.0)
    assert min(ratios) >= 0.69 and max(ratios) <= 1.31
    assert min(ratios) < 0.75 and max(ratios) > 1.25


def test_pipeline_order_crop_flip_3a_jitter_tensor_normalize():
    for crop, first in (("rrc", RandomResizedCropAndInterpolation), ("src", SimpleRandomCrop)):
        tf = train_transform(ImageDataConfig(img_size=16, crop=crop))
        kinds = [type(t) for t in tf.transforms]
        assert kinds == [first, T.RandomHorizontalFlip, AutoAugment, T.ColorJitter, MaybeToTensor, T.Normalize]
    no_3a = train_transform(ImageDataConfig(img_size=16, three_augment=False, color_jitter=0.0))
    assert [type(t) for t in no_3a.transforms] == [
        RandomResizedCropAndInterpolation, T.RandomHorizontalFlip, MaybeToTensor, T.Normalize
    ]


@pytest.mark.parametrize("size", [24, 32])
def test_rrc_pipeline_equals_timm_create_transform_pixel_for_pixel(size):
    cfg = ImageDataConfig(img_size=size, crop="rrc")
    ours = train_transform(cfg)
    timm_tf = create_transform(
        size, is_training=True, auto_augment="3a", color_jitter=0.3, interpolation="bicubic",
        mean=cfg.mean, std=cfg.std,
    )
    img = _photo(48, 36, seed=size)
    outs = []
    for i in range(12):
        seed_item(7, 3, i)
        a = ours(img)
        seed_item(7, 3, i)
        b = timm_tf(img)
        assert a.shape == (3, size, size) and a.dtype == torch.float32
        assert torch.equal(a, b)
        outs.append(a)
    assert len({o.sum().item() for o in outs}) > 6  # the seeds do give different augmentations


def test_src_pipeline_equals_torchvision_deit_recipe():
    cfg = ImageDataConfig(img_size=24, crop="src")
    ours = train_transform(cfg)
    deit = T.Compose([
        T.Resize(24, interpolation=T.InterpolationMode.BICUBIC),
        T.RandomCrop(24, padding=4, padding_mode="reflect"),
        T.RandomHorizontalFlip(),
        auto_augment_transform("3a", {"translate_const": int(24 * 0.45), "img_mean": (124, 116, 104),
                                      "interpolation": Image.BICUBIC}),
        T.ColorJitter(0.3, 0.3, 0.3),
        T.ToTensor(),
        T.Normalize(cfg.mean, cfg.std),
    ])
    img = _photo(50, 34, seed=1)
    for i in range(10):
        seed_item(0, 1, i)
        a = ours(img)
        seed_item(0, 1, i)
        assert torch.equal(a, deit(img))


def test_eval_transform_resize_and_center_crop():
    cfg = ImageDataConfig(img_size=16, eval_crop_ratio=0.8)
    out = eval_transform(cfg)(_photo(40, 30))
    ref = T.Compose([
        T.Resize(20, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(16), T.ToTensor(),
        T.Normalize(cfg.mean, cfg.std),
    ])(_photo(40, 30))
    assert out.shape == (3, 16, 16) and torch.equal(out, ref)
    full = eval_transform(ImageDataConfig(img_size=16))  # DeiT III recipe ratio 1.0: resize to 16 directly
    assert full.transforms[0].size == 16


def test_config_validation():
    with pytest.raises(ValueError, match="crop"):
        ImageDataConfig(crop="center")
    with pytest.raises(ValueError, match="eval_crop_ratio"):
        ImageDataConfig(eval_crop_ratio=1.5)
