"""Pieces every recipe shares: the model section, config files, ``--init`` handling."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn

from ...engine import load_config
from ...engine.rng import seed_everything
from ...models import build_model, load_pretrained, model_entry
from ...models.checkpoint_io import model_spec
from ...models.inflate import inflate_vit_to_timesformer, inflate_vit_to_unetr
from ...models.vit import VisionTransformer

CONFIG_DIR = Path(__file__).resolve().parents[3] / "configs"


@dataclass
class ModelSection:
    name: str = "timesformer_tiny"
    overrides: dict = field(default_factory=dict)


def find_config(name_or_path: str) -> Path:
    """A recipe by path, or by name in the repository's ``configs/`` folder."""
    p = Path(name_or_path)
    if p.exists():
        return p
    for cand in (CONFIG_DIR / name_or_path, CONFIG_DIR / f"{name_or_path}.yaml"):
        if cand.exists():
            return cand
    known = ", ".join(sorted(q.stem for q in CONFIG_DIR.glob("*.yaml")))
    raise FileNotFoundError(f"config {name_or_path!r} not found (known recipes in {CONFIG_DIR}: {known})")


def load_recipe(schema, config: str | None, overrides: list[str]):
    return load_config(schema, find_config(config) if config else None, overrides)


def build_target_model(section: ModelSection, seed: int | None = None, **forced) -> nn.Module:
    """The model a recipe asks for: its registered defaults, the recipe's overrides, then ``forced`` values.

    With ``seed`` every RNG is seeded first, so the initial weights (and any ``--init`` drawn after) are a
    function of the seed: torch's own default seed differs from process to process.
    """
    entry = model_entry(section.name)
    if seed is not None:
        seed_everything(seed)
    model = build_model(entry.arch, {**entry.defaults, **section.overrides, **forced})
    model.model_name = section.name
    return model


def init_model(target: nn.Module, init: str) -> nn.Module:
    """Initialise from any checkpoint ``load_pretrained`` reads; a 2D ViT is inflated into the target.

    A checkpoint of the target's own architecture is fine-tuned: the head is replaced when the class
    count differs, and position / time embeddings are resized to the target's grid.
    """
    cfg = target.config_dict()
    src = load_pretrained(init)
    if isinstance(src, VisionTransformer) and target.arch == "timesformer":
        keep = ("img_size", "num_frames", "num_classes", "attention", "pos_interp", "time_interp", "mean", "std",
                "drop_path_rate", "mixer_kwargs", "time_embed_std")
        return inflate_vit_to_timesformer(src, **{k: cfg[k] for k in keep}).train()
    if isinstance(src, VisionTransformer) and target.arch == "unetr":
        keep = ("img_size", "in_channels", "out_channels", "feature_size", "norm_name", "conv_block", "res_block",
                "skips", "drop_path_rate")
        return inflate_vit_to_unetr(src, **{k: cfg[k] for k in keep}).train()
    if src.arch != target.arch:
        raise ValueError(f"--init {init}: a {src.arch} checkpoint cannot initialise a {target.arch} model")
    keep = {"timesformer": ("img_size", "num_frames", "num_classes", "drop_path_rate"),
            "unetr": ("img_size", "out_channels", "drop_path_rate"),
            "vit": ("img_size", "num_classes", "drop_path_rate", "init_values")}[target.arch]
    return load_pretrained(init, **{k: cfg[k] for k in keep}).train()


def task_state(model: nn.Module, class_names: list[str]) -> dict:
    return {"model_spec": model_spec(model), "class_names": list(class_names)}
