"""``spatio train timesformer``: the recipe schema and the run it assembles."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...data.video import VideoClipDataset, VideoDataConfig, collate_videos, ensure_builtin_video_dataset
from ...engine import TrainConfig, Trainer
from ...engine.tasks import ClassificationTask
from .common import ModelSection, build_target_model, init_model, task_state

log = logging.getLogger("spatiotemporal.train")


@dataclass
class VideoDataSection:
    dataset: str = "builtin"  # builtin | kinetics
    root: str | None = None
    eval_split: str = "val"
    view_reduce: str = "mean"  # mean | sum (official)
    video: VideoDataConfig = field(default_factory=VideoDataConfig)


@dataclass
class VideoRecipe:
    model: ModelSection = field(default_factory=ModelSection)
    data: VideoDataSection = field(default_factory=VideoDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="clips"))


def dataset_root(data: VideoDataSection) -> Path:
    if data.dataset == "builtin":
        return ensure_builtin_video_dataset()
    if data.dataset != "kinetics":
        raise ValueError(f"data.dataset must be 'builtin' or 'kinetics', got {data.dataset!r}")
    if not data.root:
        raise ValueError("--data kinetics needs --data-root DIR (with train.csv, val.csv, test.csv)")
    return Path(data.root)


def build_video_model(recipe: VideoRecipe, num_classes: int) -> torch.nn.Module:
    v = recipe.data.video
    model = build_target_model(recipe.model, seed=recipe.train.seed, num_classes=num_classes,
                               num_frames=v.num_frames, img_size=v.crop_size)
    if recipe.train.init:
        model = init_model(model, recipe.train.init)
    v.mean, v.std = tuple(model.cfg.mean), tuple(model.cfg.std)  # normalise with the model's statistics
    return model


def train_video(recipe: VideoRecipe) -> dict:
    root = dataset_root(recipe.data)
    seed = recipe.train.seed
    probe = VideoClipDataset(root, "train", recipe.data.video, seed=seed)
    model = build_video_model(recipe, probe.num_classes)
    train_ds = VideoClipDataset(root, "train", recipe.data.video, seed=seed)
    val_ds = VideoClipDataset(root, recipe.data.eval_split, recipe.data.video, seed=seed, multi_view=True)
    log.info("%s: %d train / %d %s videos, %d classes; model %s (%s, %.2fM params)", root, len(train_ds),
             len(val_ds), recipe.data.eval_split, train_ds.num_classes, recipe.model.name, model.cfg.attention,
             sum(p.numel() for p in model.parameters()) / 1e6)
    task = ClassificationTask("video", view_reduce=recipe.data.view_reduce,
                              state=task_state(model, train_ds.class_names))
    trainer = Trainer(model, task, train_ds, val_ds, recipe.train, collate_fn=collate_videos, run_config=recipe)
    return trainer.fit()


def evaluate_video(recipe: VideoRecipe, model: torch.nn.Module, split: str, batch_size: int, workers: int,
                   device: torch.device) -> dict:
    """Top-1 / top-5 on ``split`` with the multi-view protocol (K clips x 3 crops, views averaged or summed)."""
    from ...data.video import build_video_loader

    v = recipe.data.video
    v.mean, v.std = tuple(model.cfg.mean), tuple(model.cfg.std)
    v.num_frames = model.cfg.num_frames
    ds = VideoClipDataset(dataset_root(recipe.data), split, v, seed=recipe.train.seed, multi_view=True)
    loader = build_video_loader(ds, batch_size, num_workers=workers)
    task = ClassificationTask("video", view_reduce=recipe.data.view_reduce)
    skipped: list[str] = []

    def batches():
        for b in loader:
            skipped.extend(b.get("skipped", []))
            yield {k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()}

    metrics = task.evaluate(model.eval(), batches())
    return {"split": split, "views": v.num_views, "view_reduce": recipe.data.view_reduce, **metrics,
            "skipped": len(skipped), "skipped_paths": skipped[:20]}
