"""Clip-consistent video augmentations against the references applied frame by frame with the same draws:
timm RandAugment / RandomErasing / Mixup, torchvision RandomResizedCrop.get_params + v2 resized_crop.
Clips are real mp4 frames decoded by decord (4 frames, 48x64)."""

import random
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms as T
import torchvision.transforms.v2.functional as TF
from timm.data import Mixup
from timm.data.auto_augment import rand_augment_transform
from timm.data.random_erasing import RandomErasing
from timm.data.transforms import str_to_pil_interp

from spatiotemporal.data.video import (
    ClipMixup,
    VideoClipDataset,
    VideoDataConfig,
    clip_rand_augment,
    clip_random_erasing,
    clip_resized_crop,
    collate_videos,
    read_clip,
)
from spatiotemporal.data.video import dataset as dataset_module
from spatiotemporal.data.video.augment import random_erasing
from spatiotemporal.data.video.synthetic import write_mp4
from spatiotemporal.data.video.transforms import frames_to_tchw, train_clip_transform
from spatiotemporal.utils.errors import UserInputError

RA = "rand-m9-n4-mstd0.5-inc1"
MVIT = dict(rand_augment="rand-m7-n4-mstd0.5-inc1", rrc_scale=(0.08, 1.0), random_erasing=0.25)


def seed_all(seed: int) -> None:
    """The reference's draws: timm and torchvision read the global random / numpy / torch RNGs."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("aug")
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1, 48, 64, 3))
    frames = np.clip(base + np.arange(12)[:, None, None, None] * 5, 0, 255).astype(np.uint8)
    write_mp4(root / "a.mp4", frames, fps=25)
    write_mp4(root / "b.mp4", frames[::-1].copy(), fps=25)
    (root / "classes.txt").write_text("x\ny\n")
    (root / "train.csv").write_text("a.mp4 x\nb.mp4 y\n")
    return root


@pytest.fixture(scope="module")
def frames(root) -> torch.Tensor:
    """4 decoded frames, uint8 (T, H, W, 3)."""
    return read_clip(root / "a.mp4", lambda n, fps: np.arange(4), backend="decord").frames


def still(frames: torch.Tensor) -> torch.Tensor:
    """A clip of 4 identical frames (the first decoded one)."""
    return frames[:1].repeat(4, 1, 1, 1)


def frames_equal(clip: torch.Tensor, dim: int) -> bool:
    first = clip.select(dim, 0)
    return all(torch.equal(first, clip.select(dim, t)) for t in range(clip.shape[dim]))


def test_rand_augment_equals_timm_per_frame_with_the_same_draws(frames):
    hparams = {"translate_const": int(0.45 * 48), "interpolation": str_to_pil_interp("bicubic")}  # SlowFast's
    ref_ra = rand_augment_transform(RA, hparams)
    state = random.getstate()
    changed = 0
    for seed in range(4):
        out = clip_rand_augment(frames, RA, seed)
        ref = []
        for f in frames.numpy():
            seed_all(seed)
            ref.append(np.asarray(ref_ra(T.functional.to_pil_image(f))))
        assert torch.equal(out, torch.from_numpy(np.stack(ref)))
        changed += not torch.equal(out, frames)
    assert changed >= 3  # the ops do change the frames
    random.setstate(state)
    out = clip_rand_augment(frames, RA, 0)
    assert random.getstate() == state  # the callers' RNG is left as it was


def test_rand_augment_gives_every_frame_the_same_ops(frames):
    outs = [clip_rand_augment(still(frames), RA, seed) for seed in range(4)]
    assert all(frames_equal(o, 0) for o in outs)
    assert len({o[0].numpy().tobytes() for o in outs}) > 1  # another clip, other ops


def test_resized_crop_equals_torchvision_per_frame_and_slowfast_interpolation(frames):
    x = frames_to_tchw(frames)
    for seed in range(3):
        out = clip_resized_crop(x, 24, (0.08, 1.0), (3 / 4, 4 / 3), seed)
        torch.manual_seed(seed)
        top, left, h, w = T.RandomResizedCrop.get_params(x[0], [0.08, 1.0], [3 / 4, 4 / 3])
        ref = torch.stack([TF.resized_crop(f, top, left, h, w, [24, 24], antialias=False) for f in x])
        assert torch.equal(out, ref)
        slowfast = F.interpolate(x[..., top : top + h, left : left + w], size=(24, 24), mode="bilinear",
                                 align_corners=False)  # PySlowFast random_resized_crop
        torch.testing.assert_close(out, slowfast)
    boxes = {clip_resized_crop(frames_to_tchw(still(frames)), 24, (0.08, 1.0), (3 / 4, 4 / 3), s)[0].sum().item()
             for s in range(4)}
    assert len(boxes) > 1
    assert frames_equal(clip_resized_crop(frames_to_tchw(still(frames)), 24, (0.08, 1.0), (3 / 4, 4 / 3), 5), 0)


def test_random_erasing_equals_timm_per_frame_one_box_per_clip(frames):
    x = frames_to_tchw(frames).permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)
    ref_eraser = RandomErasing(1.0, mode="pixel", max_count=1, device="cpu")
    for seed in range(3):
        out = clip_random_erasing(x.clone(), random_erasing(1.0), seed)
        ref = []
        for t in range(x.shape[1]):
            seed_all(seed)
            ref.append(ref_eraser(x[:, t].clone()))
        assert torch.equal(out, torch.stack(ref, 1))
        assert not torch.equal(out, x)
    s = frames_to_tchw(still(frames)).permute(1, 0, 2, 3).contiguous()
    assert frames_equal(clip_random_erasing(s, random_erasing(1.0), 7), 1)
    assert torch.equal(clip_random_erasing(x.clone(), random_erasing(0.0), 7), x)


@pytest.mark.parametrize("alphas", [(0.8, 0.0), (0.0, 1.0), (0.8, 1.0)], ids=["mixup", "cutmix", "switch"])
def test_clip_mixup_equals_timm_mixup_per_frame(alphas):
    def mixup():
        return Mixup(mixup_alpha=alphas[0], cutmix_alpha=alphas[1], label_smoothing=0.1, num_classes=5)

    x = torch.rand(4, 3, 3, 16, 16)
    y = torch.tensor([0, 1, 2, 3])
    np.random.seed(3)
    out, target = ClipMixup(mixup())(x.clone(), y)
    for t in range(x.shape[2]):
        np.random.seed(3)
        ref, ref_target = mixup()(x[:, :, t].clone(), y)
        assert torch.equal(out[:, :, t], ref)
        assert torch.equal(target, ref_target)
    assert not torch.equal(out, x)
    np.random.seed(3)
    same, _ = ClipMixup(mixup())(x[:, :, :1].repeat(1, 1, 3, 1, 1), y)
    assert all(frames_equal(c, 1) for c in same)
    if alphas[1] == 0:  # plain mixup needs no reshape: timm Mixup on the 5D batch itself
        np.random.seed(3)
        direct, _ = mixup()(x.clone(), y)
        assert torch.equal(direct, out)


def test_full_mvit_stack_is_clip_consistent_and_off_by_default(frames):
    cfg = VideoDataConfig(num_frames=4, crop_size=24, train_jitter_scales=(28, 36), **MVIT)
    clip = train_clip_transform(still(frames), np.random.default_rng(0), cfg.train_jitter_scales, 24, cfg.mean,
                                cfg.std, augment=cfg.augment)
    assert clip.shape == (3, 4, 24, 24) and frames_equal(clip, 1)
    plain = VideoDataConfig(num_frames=4, crop_size=24, train_jitter_scales=(28, 36))
    assert not plain.augment.active
    a = train_clip_transform(frames, np.random.default_rng(1), (28, 36), 24, plain.mean, plain.std)
    b = train_clip_transform(frames, np.random.default_rng(1), (28, 36), 24, plain.mean, plain.std,
                             augment=plain.augment)
    assert torch.equal(a, b)


def test_repeated_augmentation_decodes_once_and_gives_n_different_clips(root, monkeypatch):
    calls = []

    def counting_read_clip(*args, **kwargs):
        calls.append(args[0])
        return read_clip(*args, **kwargs)

    monkeypatch.setattr(dataset_module, "read_clip", counting_read_clip)
    cfg = VideoDataConfig(num_frames=4, sampling_rate=2, crop_size=24, train_jitter_scales=(28, 36), repeated_aug=3,
                          **MVIT)
    ds = VideoClipDataset(root, "train", cfg, seed=0)
    items = ds[1]
    assert len(calls) == 1 and len(items) == 3
    assert {i["index"] for i in items} == {1} and {i["label"] for i in items} == {1}
    videos = [i["video"] for i in items]
    assert all(v.shape == (3, 4, 24, 24) for v in videos)
    assert not torch.equal(videos[0], videos[1]) and not torch.equal(videos[1], videos[2])
    batch = collate_videos([ds[0], items])
    assert len(calls) == 2
    assert batch["video"].shape == (6, 3, 4, 24, 24) and batch["index"].tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(batch["video"][3], videos[0])
    (root / "val.csv").write_text("a.mp4 x\n")
    val = VideoClipDataset(root, "val", cfg, seed=0)[0]  # validation clips: the plain jitter + crop, one per video
    plain = VideoClipDataset(root, "val", VideoDataConfig(num_frames=4, sampling_rate=2, crop_size=24,
                                                          train_jitter_scales=(28, 36)), seed=0)[0]
    assert torch.equal(val["video"], plain["video"])


@pytest.mark.parametrize("key,value,words", [
    ("rand_augment", "rand-zz9", "rand_augment must be a timm RandAugment string"),
    ("rand_augment", "augmix-m5", "rand_augment must be a timm RandAugment string"),
    ("rrc_scale", (0.9, 0.1), "rrc_scale must be (min, max)"),
    ("rrc_ratio", (0.0, 1.0), "rrc_ratio must be (min, max)"),
    ("random_erasing", 1.5, "random_erasing is a probability"),
    ("repeated_aug", 0, "repeated_aug must be >= 1"),
])
def test_augmentation_keys_are_validated_in_one_line(key, value, words):
    with pytest.raises(UserInputError) as e:
        VideoDataConfig.from_dict({key: value})
    assert words in str(e.value) and "\n" not in str(e.value)
