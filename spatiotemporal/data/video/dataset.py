"""``VideoClipDataset``: Kinetics-layout video classification (``{train,val,test}.csv`` + ``classes.txt``).

Split files follow the rules of ``data.labels_csv`` (``path label`` or ``path,label`` lines).

Items:

- train / val (TimeSformer validates with the training augmentation): ``{"video": (C, T, S, S) float32,
  "label": int, "index": int}`` with one random clip, scale, crop and flip.
- train split with ``cfg.repeated_aug = N > 1``: a list of N such items from one decoded video, each augmented with its
  own draws (PySlowFast ``AUG.NUM_SAMPLE``, VideoMAE ``num_sample``); :func:`~.loader.collate_videos` flattens them.
- test, or ``multi_view=True``: ``{"video": (V, C, T, S, S), ...}`` with ``V = test_num_clips *
  test_num_crops`` views ordered clip-major (view ``v = clip * num_crops + crop``); no randomness.
- an unreadable video (missing, truncated, corrupt, a frame folder without frames): ``{"skipped": path,
  "reason": str, "index": int}``, every epoch (the engine counts it) and :func:`~.loader.collate_videos` drops the
  item. The dataset remembers it: it is decoded and logged (one warning on the ``spatiotemporal.data.video``
  logger) only the first time, by any worker; later its reason is the one this process saw, if it read it.

Every random draw is a function of ``(seed, epoch, index)`` through ``seed_item``. The epoch and the
unreadable flags live in shared memory, so they reach persistent DataLoader workers too.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from ..labels_csv import infer_class_names, read_class_file, read_labels_csv, read_multilabel_csv
from ..seeding import seed_item
from .config import SPLITS, VideoDataConfig
from .decode import VideoDecodeError, read_clip
from .sampling import segment_indices, train_clip_indices
from .ssv2 import read_ssv2_split, ssv2_class_names
from .transforms import train_clip_transform
from .views import load_test_views

logger = logging.getLogger("spatiotemporal.data.video")


def resolve_class_names(root: str | Path, cfg: VideoDataConfig) -> list[str]:
    """``root/classes.txt`` when present, else names inferred from all split CSVs found under ``root``."""
    root = Path(root)
    if cfg.annotation == "ssv2":
        return ssv2_class_names(root)
    class_file = root / cfg.class_file
    if class_file.is_file():
        return read_class_file(class_file)
    csvs = [root / cfg.csv_name(s) for s in SPLITS if (root / cfg.csv_name(s)).is_file()]
    if cfg.multi_label:
        names = {n for c in csvs for n in read_multilabel_csv(c)[1]}
        return [str(i) for i in range(max(map(int, names)) + 1)] if all(n.isdigit() for n in names) else sorted(names)
    return infer_class_names(csvs)


class VideoClipDataset(Dataset):
    """Map-style video clip dataset over ``root/{split}.csv``.

    Args:
        root: dataset directory holding the split CSVs (and ``classes.txt``); relative video paths are
            resolved against ``root / cfg.path_prefix``.
        split: ``"train" | "val" | "test"``.
        cfg: sampling / augmentation / decoding settings (default: TimeSformer 8x32 at 224).
        seed: base seed of the per-item random draws.
        multi_view: return all test views ``(V, C, T, S, S)``; default True for ``split="test"`` only.
    """

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        cfg: VideoDataConfig | None = None,
        seed: int = 0,
        multi_view: bool | None = None,
    ):
        self.cfg = cfg if cfg is not None else VideoDataConfig()
        self.root = Path(root)
        self.split = split
        self.seed = int(seed)
        self.multi_view = (split == "test") if multi_view is None else bool(multi_view)
        self.class_names = resolve_class_names(self.root, self.cfg)
        base = self.root / self.cfg.path_prefix if self.cfg.path_prefix else self.root
        if self.cfg.annotation == "ssv2":
            self.samples, _ = read_ssv2_split(self.root, split, base)
        elif self.cfg.multi_label:
            self.samples, _ = read_multilabel_csv(self.root / self.cfg.csv_name(split), root=base,
                                                  class_names=self.class_names)
        else:
            self.samples, _ = read_labels_csv(self.root / self.cfg.csv_name(split), root=base,
                                              class_names=self.class_names)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._unreadable = torch.zeros(len(self.samples), dtype=torch.bool).share_memory_()
        self.num_skipped = 0  # per process; use the collated "skipped" lists to count across workers
        self._reasons: dict[int, str] = {}  # per process: why the videos this process read were unreadable

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def labels(self) -> list[int]:
        return [label for _, label in self.samples]

    @property
    def unreadable(self) -> list[Path]:
        """The videos found unreadable so far (by this process or any DataLoader worker)."""
        return [path for (path, _), bad in zip(self.samples, self._unreadable.tolist()) if bad]

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation of ``epoch`` (shared with already started worker processes)."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any] | list[dict[str, Any]]:
        rng = seed_item(self.seed, self.epoch, index)
        path, label = self.samples[index]
        if self._unreadable[index]:  # known bad: not decoded nor logged again
            self.num_skipped += 1
            reason = self._reasons.get(index, "found unreadable earlier in this run")
            return {"skipped": str(path), "reason": reason, "index": index}
        try:
            video = self._load_multi_view(path) if self.multi_view else self._load_train(path, rng)
        except VideoDecodeError as e:
            self._unreadable[index] = True
            self.num_skipped += 1
            self._reasons[index] = e.reason
            logger.warning("skipping unreadable video %s (%s)", e.path, e.reason)
            return {"skipped": str(path), "reason": e.reason, "index": index}
        if self.cfg.multi_label:  # multi-hot (K,) float
            label = torch.zeros(len(self.class_names)).index_fill_(0, torch.as_tensor(label), 1.0)
        if isinstance(video, list):
            return [{"video": v, "label": label, "index": index} for v in video]
        return {"video": video, "label": label, "index": index}

    def _load_train(self, path: Path, rng: np.random.Generator) -> torch.Tensor | list[torch.Tensor]:
        """One clip ``(C, T, S, S)``; with ``repeated_aug = N > 1``, N clips augmented from one decode. The
        clip-consistent augmentations and repeats apply to the train split only, as in PySlowFast (``self.aug`` and
        ``num_aug`` in train mode) and VideoMAE."""
        c = self.cfg
        clip = read_clip(
            path,
            lambda n, fps: segment_indices(n, c.num_frames, rng) if c.sampling == "segments" else
            train_clip_indices(n, fps, c.num_frames, c.sampling_rate, rng, c.target_fps),
            backend=c.backend,
            short_side=c.decode_short_side,
            num_threads=c.decode_threads,
        )
        train = self.split == "train"
        repeats = c.repeated_aug if train else 1
        clips = [train_clip_transform(clip.frames, rng, c.train_jitter_scales, c.crop_size, c.mean, c.std,
                                      c.random_flip, augment=c.augment if train else None) for _ in range(repeats)]
        return clips if repeats > 1 else clips[0]

    def _load_multi_view(self, path: Path) -> torch.Tensor:
        return load_test_views(path, self.cfg)
