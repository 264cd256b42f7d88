"""Samples for the visualisations: every dataset access of ``spatio viz`` lives here.

:func:`load_viz_samples` returns a :class:`VizSamples` that yields ``(x, label)`` pairs, one sample at a
time, with ``x`` a float tensor the model takes after adding a batch axis:

- ``image``: ``(3, S, S)``: the evaluation transform (resize + centre crop + normalise);
- ``video``: ``(3, T, S, S)``: one deterministic clip, centre crop (the test-time view ``clip 0, crop 0``);
- ``volume``: ``(1, S, S, S)``: the validation chain (orient, resample, HU window, foreground crop), then for
  ``purpose="erf"`` the centred crop/pad to ``S``^3 and for ``purpose="tsne"`` one crop centred on each
  labelled organ of the case (label = that organ), so that segmentation sets get per-crop classes.

``data`` is ``"builtin"`` (the model kind's generated set, ``data_root`` = cache folder) or an external set in
the layout of ``data_recipes/``: ``"kinetics"`` (``{split}.csv`` + ``classes.txt``), ``"imagenet"`` (ImageNet
folders ``train/``, ``val/``), ``"btcv"`` (decathlon ``dataset_0.json``). Subsets of ``max_samples`` take
evenly spaced items so that sorted or interleaved classes stay balanced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

KINDS = ("image", "video", "volume")
ARCH_KIND = {"vit": "image", "timesformer": "video", "unetr": "volume"}
DATA_CHOICES = ("builtin", "kinetics", "imagenet", "btcv")
EXTERNAL_KIND = {"kinetics": "video", "imagenet": "image", "btcv": "volume"}


@dataclass
class VizSamples:
    """An iterable of ``(x, label)``; ``total`` is the number of items it yields (an upper bound for volumes)."""

    kind: str
    class_names: list[str]
    total: int
    description: str
    _iterate: Callable[[], Iterator[tuple[torch.Tensor, int]]]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, int]]:
        return self._iterate()

    def __len__(self) -> int:
        return self.total


def model_kind(model: torch.nn.Module) -> str:
    """``"image" | "video" | "volume"`` from ``model.arch``."""
    arch = getattr(model, "arch", None)
    if arch not in ARCH_KIND:
        raise ValueError(f"cannot tell the input kind of a model with arch {arch!r}; expected one of {list(ARCH_KIND)}")
    return ARCH_KIND[arch]


def evenly_spaced(n: int, m: int | None) -> list[int]:
    """``m`` indices spread evenly over ``range(n)`` (all of them if ``m`` is None or >= n)."""
    if m is None or m >= n:
        return list(range(n))
    if m <= 0:
        raise ValueError(f"--max-samples / --num-inputs must be >= 1, got {m}")
    return sorted({int(round(v)) for v in np.linspace(0, n - 1, m)})


def _check_kind(data: str, kind: str) -> None:
    if data not in DATA_CHOICES:
        raise ValueError(f"unknown --data {data!r}; expected one of {DATA_CHOICES}")
    if data != "builtin" and EXTERNAL_KIND[data] != kind:
        raise ValueError(f"--data {data} holds {EXTERNAL_KIND[data]}s but the model takes {kind}s")


def _need_root(data: str, data_root: str | Path | None) -> Path:
    if data_root is None:
        raise ValueError(f"--data {data} needs --data-root (the prepared dataset folder, see data_recipes/{data})")
    root = Path(data_root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"--data-root {root} is not a folder")
    return root


def _images(data: str, data_root, split: str, max_samples: int | None, img_size: int | None,
            norm: dict) -> VizSamples:
    from ..data.image import ImageDataConfig, ImageFolderDataset, builtin_image_config, ensure_builtin_image_dataset
    from ..data.image.csv_list import CsvImageDataset
    from ..data.image.transforms import eval_transform

    if data == "builtin":
        root = ensure_builtin_image_dataset(data_root)
        cfg = builtin_image_config(**({"img_size": img_size} if img_size else {}), **norm)
    else:
        root = _need_root(data, data_root)
        cfg = ImageDataConfig(img_size=img_size or 224, **norm)
    tf = eval_transform(cfg)
    names = None
    if (root / "train").is_dir() and split != "train":
        names = ImageFolderDataset(root / "train").class_names
    if (root / split).is_dir():
        ds = ImageFolderDataset(root / split, tf, class_names=names)
    elif (root / f"{split}.csv").is_file():
        ds = CsvImageDataset(root / f"{split}.csv", tf, class_names=names)
    else:
        raise FileNotFoundError(f"{root}: no '{split}/' class folders and no '{split}.csv'")
    idx = evenly_spaced(len(ds), max_samples)

    def iterate():
        for i in idx:
            item = ds[i]
            if "image" in item:
                yield item["image"], int(item["label"])

    return VizSamples("image", list(ds.class_names), len(idx), f"{data} images ({split}, {cfg.img_size} px)", iterate)


def _videos(data: str, data_root, split: str, max_samples: int | None, img_size: int | None,
            num_frames: int | None, norm: dict) -> VizSamples:
    from ..data.video import VideoClipDataset, VideoDataConfig, builtin_video_config, ensure_builtin_video_dataset

    if data == "builtin":
        root = ensure_builtin_video_dataset(data_root)
        base = builtin_video_config().to_dict()
    else:
        root = _need_root(data, data_root)
        base = VideoDataConfig().to_dict()
        base["crop_size"] = img_size or 224
    if img_size:
        base["crop_size"] = img_size
        base["train_jitter_scales"] = (img_size, max(img_size, base["train_jitter_scales"][1]))
    if num_frames:
        base["num_frames"] = num_frames
    base.update(test_num_clips=1, test_num_crops=1, test_crop_size=None, **norm)
    cfg = VideoDataConfig.from_dict(base)
    ds = VideoClipDataset(root, split, cfg, multi_view=True)
    idx = evenly_spaced(len(ds), max_samples)

    def iterate():
        for i in idx:
            item = ds[i]
            if "video" in item:
                yield item["video"][0], int(item["label"])

    desc = f"{data} videos ({split}, {cfg.num_frames}x{cfg.crop_size} px)"
    return VizSamples("video", list(ds.class_names), len(idx), desc, iterate)


def crop_centered(vol: np.ndarray, center, size) -> np.ndarray:
    """``(C, H, W, D)`` -> ``(C, *size)`` centred on voxel ``center``, zero-padded where it leaves the volume."""
    size = tuple(int(s) for s in size)
    pad = [(0, 0)] + [(s, s) for s in size]
    padded = np.pad(vol, pad)
    sl = tuple(slice(int(c) + s - s // 2, int(c) + s - s // 2 + s) for c, s in zip(center, size))
    return padded[(slice(None),) + sl]


def _volumes(data: str, data_root, split: str, max_samples: int | None, img_size, purpose: str) -> VizSamples:
    from monai.data import Dataset

    from ..data.volume import builtin_volume_config, ensure_builtin_volume_dataset, load_volume_datalist
    from ..data.volume.transforms import VolumeDataConfig, val_transforms

    if data == "builtin":
        root = ensure_builtin_volume_dataset(data_root)
        cfg = builtin_volume_config(cache="none")
    else:
        root = _need_root(data, data_root)
        cfg = VolumeDataConfig(cache="none", roi=img_size or (96, 96, 96))
    roi = tuple(img_size) if isinstance(img_size, (tuple, list)) else ((img_size,) * 3 if img_size else cfg.roi)
    dl = load_volume_datalist(root)
    if split not in ("train", "val"):
        raise ValueError(f"volume sets have splits 'train' and 'val', got {split!r}")
    items = dl.training if split == "train" else dl.validation
    ds = Dataset(items, val_transforms(cfg))
    organs = len(dl.class_names) - 1

    if purpose == "erf":
        idx = evenly_spaced(len(ds), max_samples)

        def iterate():
            for i in idx:
                img = np.asarray(ds[i]["image"])
                yield torch.from_numpy(crop_centered(img, [s // 2 for s in img.shape[1:]], roi).copy()), 0

        total = len(idx)
    else:
        total = len(ds) * organs if max_samples is None else min(max_samples, len(ds) * organs)

        def iterate():
            n = 0
            for i in range(len(ds)):
                item = ds[i]
                img, lab = np.asarray(item["image"]), np.asarray(item["label"])[0]
                for k in range(1, organs + 1):
                    where = np.argwhere(lab == k)
                    if len(where) == 0:
                        continue
                    center = np.round(where.mean(0)).astype(int)
                    yield torch.from_numpy(crop_centered(img, center, roi).copy()), k
                    n += 1
                    if n >= total:
                        return

    desc = f"{data} volumes ({split}, {'x'.join(map(str, roi))} crops{'' if purpose == 'erf' else ' per organ'})"
    return VizSamples("volume", list(dl.class_names), total, desc, iterate)


def load_viz_samples(kind: str, data: str = "builtin", data_root: str | Path | None = None, split: str = "val",
                     max_samples: int | None = None, img_size=None, num_frames: int | None = None,
                     purpose: str = "tsne", mean=None, std=None) -> VizSamples:
    """Samples of ``kind`` (see module docstring). ``img_size``, ``num_frames`` and the normalisation ``mean``,
    ``std`` (images, videos) replace the data's own settings when given; :func:`model_data_overrides` gives
    them for a model."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {KINDS}")
    if purpose not in ("tsne", "erf"):
        raise ValueError(f"purpose must be 'tsne' or 'erf', got {purpose!r}")
    _check_kind(data, kind)
    norm = {k: tuple(v) for k, v in (("mean", mean), ("std", std)) if v is not None}
    if kind == "image":
        return _images(data, data_root, split, max_samples, img_size, norm)
    if kind == "video":
        return _videos(data, data_root, split, max_samples, img_size, num_frames, norm)
    return _volumes(data, data_root, split, max_samples, img_size, purpose)


def model_data_overrides(model: torch.nn.Module, data: str) -> dict:
    """Keyword arguments of :func:`load_viz_samples` that fit ``model`` to ``data``: nothing for the built-in
    sets (their own recommended sizes and statistics are what the built-in recipes train with), else the
    model's ``img_size``, ``num_frames`` and (TimeSformer) ``mean`` / ``std`` from its config."""
    if data == "builtin":
        return {}
    cfg = model.cfg
    keys = ("img_size", "num_frames", "mean", "std")
    return {k: getattr(cfg, k) for k in keys if getattr(cfg, k, None) is not None}
