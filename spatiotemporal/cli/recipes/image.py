"""``spatio train vit``: the DeiT III recipe on image folders or the built-in shapes set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import torch

from ...data.image import (
    ImageDataConfig,
    RASampler,
    build_image_datasets,
    build_mixup_and_loss,
    collate_images,
)
from ...engine import TrainConfig, Trainer
from ...engine.tasks import ClassificationTask
from .common import ModelSection, build_target_model, init_model, task_state

log = logging.getLogger("spatiotemporal.train")


@dataclass
class ImageDataSection:
    dataset: str = "builtin"  # builtin | imagenet (folder layout or CSVs)
    root: str | None = None
    image: ImageDataConfig = field(default_factory=ImageDataConfig)
    loss: str = "bce"  # bce (DeiT III, binarised mixup targets) | ce (label smoothing, ImageNet-21k style)
    smoothing: float = 0.0
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0


@dataclass
class ImageRecipe:
    model: ModelSection = field(default_factory=lambda: ModelSection(name="vit_tiny_builtin"))
    data: ImageDataSection = field(default_factory=ImageDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="images"))


def _data_path(data: ImageDataSection):
    if data.dataset == "builtin":
        return None
    if data.dataset != "imagenet":
        raise ValueError(f"data.dataset must be 'builtin' or 'imagenet', got {data.dataset!r}")
    if not data.root:
        raise ValueError("--data imagenet needs --data-root DIR (with train/ and val/, or train.csv and val.csv)")
    return data.root


def train_image(recipe: ImageRecipe) -> dict:
    d, seed = recipe.data, recipe.train.seed
    train_ds, val_ds = build_image_datasets(_data_path(d), d.image, seed=seed)
    names = list(train_ds.class_names)
    model = build_target_model(recipe.model, seed=seed, num_classes=len(names), img_size=d.image.img_size)
    if recipe.train.init:
        model = init_model(model, recipe.train.init)
    mixup_fn, loss_fn = build_mixup_and_loss(len(names), d.loss, d.mixup_alpha, d.cutmix_alpha, d.smoothing)
    log.info("%d train / %d val images, %d classes; model %s (%.2fM params)", len(train_ds), len(val_ds),
             len(names), recipe.model.name, sum(p.numel() for p in model.parameters()) / 1e6)
    task = ClassificationTask("image", loss_fn=loss_fn, mixup_fn=mixup_fn, state=task_state(model, names))
    reps, round_to = d.image.repeated_aug, d.image.ra_round_to

    def sampler_factory(ds, shuffle, s, rank, world):
        return RASampler(ds, reps, world, rank, shuffle, s, round_to if round_to > 1 else None)

    trainer = Trainer(model, task, train_ds, val_ds, recipe.train, collate_fn=collate_images,
                      sampler_factory=sampler_factory if reps > 1 else None, run_config=recipe)
    return trainer.fit()


def evaluate_image(recipe: ImageRecipe, model: torch.nn.Module, split: str, batch_size: int, workers: int,
                   device: torch.device) -> dict:
    """Top-1 / top-5 on the validation images (resize + centre crop)."""
    if split != "val":
        raise ValueError(f"image evaluation reads the 'val' split, got {split!r}")
    recipe.data.image.img_size = model.cfg.img_size
    _, val_ds = build_image_datasets(_data_path(recipe.data), recipe.data.image, seed=recipe.train.seed)
    loader = torch.utils.data.DataLoader(val_ds, batch_size=batch_size, num_workers=workers,
                                         collate_fn=collate_images)
    batches = ({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()} for b in loader)
    return {"split": split, **ClassificationTask("image").evaluate(model.eval(), batches)}
