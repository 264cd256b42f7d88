"""``spatio train unetr``: the BTCV recipe (decathlon layout) or the built-in CT phantoms."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...data.volume import (
    VolumeDataConfig,
    build_volume_datasets,
    ensure_builtin_volume_dataset,
    preprocess_volume,
    restore_label_map,
    volume_collate,
)
from ...engine import TrainConfig, Trainer
from ...engine.tasks import SegmentationTask, dice_table
from .common import ModelSection, build_target_model, init_model, task_state

log = logging.getLogger("spatiotemporal.train")


@dataclass
class VolumeDataSection:
    dataset: str = "builtin"  # builtin | btcv (any decathlon-style dataset)
    root: str | None = None
    json_name: str = "dataset_0.json"
    overlap: float = 0.25  # sliding-window validation
    sw_batch_size: int = 4
    volume: VolumeDataConfig = field(default_factory=VolumeDataConfig)


@dataclass
class VolumeRecipe:
    model: ModelSection = field(default_factory=lambda: ModelSection(name="unetr_tiny"))
    data: VolumeDataSection = field(default_factory=VolumeDataSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(throughput_unit="crops", eval_batch_size=1))


def dataset_root(data: VolumeDataSection) -> Path:
    if data.dataset == "builtin":
        return ensure_builtin_volume_dataset()
    if data.dataset != "btcv":
        raise ValueError(f"data.dataset must be 'builtin' or 'btcv', got {data.dataset!r}")
    if not data.root:
        raise ValueError(f"--data btcv needs --data-root DIR (with {data.json_name}, imagesTr/, labelsTr/)")
    return Path(data.root)


def _task(recipe: VolumeRecipe, class_names, model=None) -> SegmentationTask:
    d = recipe.data
    state = task_state(model, class_names) if model is not None else None
    return SegmentationTask(class_names, d.volume.roi, d.overlap, d.sw_batch_size, state=state)


def train_volume(recipe: VolumeRecipe) -> dict:
    d = recipe.data
    train_ds, val_ds, names = build_volume_datasets(dataset_root(d), d.volume, d.json_name, recipe.train.seed)
    model = build_target_model(recipe.model, seed=recipe.train.seed, img_size=tuple(d.volume.roi),
                               out_channels=len(names))
    if recipe.train.init:
        model = init_model(model, recipe.train.init)
    log.info("%d train / %d val cases, classes %s; model %s (%.2fM params)", len(train_ds), len(val_ds), names,
             recipe.model.name, sum(p.numel() for p in model.parameters()) / 1e6)
    trainer = Trainer(model, _task(recipe, names, model), train_ds, val_ds, recipe.train,
                      collate_fn=volume_collate, run_config=recipe)
    summary = trainer.fit()
    if summary.get("final_metrics"):
        print(dice_table(summary["final_metrics"], names))
    return summary


def evaluate_volume(recipe: VolumeRecipe, model: torch.nn.Module, split: str, device: torch.device) -> dict:
    """Per-class Dice (with and without background) on the validation cases, sliding-window."""
    if split != "validation":
        raise ValueError(f"volume evaluation reads the dataset JSON's 'validation' list, got {split!r}")
    d = recipe.data
    d.volume.roi = tuple(model.cfg.img_size)
    _, val_ds, names = build_volume_datasets(dataset_root(d), d.volume, d.json_name, recipe.train.seed)
    loader = torch.utils.data.DataLoader(val_ds, batch_size=1, collate_fn=volume_collate)
    batches = ({k: v.to(device) if torch.is_tensor(v) else v for k, v in b.items()} for b in loader)
    metrics = _task(recipe, names).evaluate(model.eval(), batches)
    print(dice_table(metrics, names))
    return {"split": split, **metrics}


@torch.inference_mode()
def predict_volume(recipe: VolumeRecipe, model: torch.nn.Module, path: str, device: torch.device):
    """Label map of ``path`` in the patient's original grid: ``(X, Y, Z)`` int16 array."""
    d = recipe.data
    d.volume.roi = tuple(model.cfg.img_size)
    image, meta = preprocess_volume(path, d.volume)
    names = [str(i) for i in range(model.cfg.out_channels)]
    logits = _task(recipe, names).predict(model.eval(), image.to(device))
    return restore_label_map(logits.argmax(1)[0].cpu(), meta)
