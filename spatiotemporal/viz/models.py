"""Models to visualise: trained checkpoints or registered names with config overrides, and their labels.

A model spec is ``NAME`` or ``NAME:key=value,key=value`` with YAML values and dotted keys into dict fields,
e.g. ``timesformer_tiny:mixer=xca,mixer_kwargs.ndim=2`` or ``unetr_tiny:img_size=[32,32,32]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from ..utils.errors import UserInputError
from ..utils.keyvalue import nest_keys, parse_key_values, split_top_level

MIXER_KEYS = ("attention", "mixer", "mixer_kwargs", "framewise")
GENERIC_STEMS = {"model", "last", "best", "checkpoint", "final", "latest", "ema"}


def parse_model_spec(spec: str) -> tuple[str, dict]:
    """``"NAME:a=1,b.c=x"`` -> ``("NAME", {"a": 1, "b": {"c": "x"}})``."""
    name, _, rest = spec.partition(":")
    pairs = parse_key_values(split_top_level(rest), where=f"model spec {spec!r}", example="mixer=joint")
    return name.strip(), nest_keys(pairs)


def mixer_label(model: nn.Module) -> str:
    """The token mixer of a model, e.g. ``"divided"``, ``"xca (ndim=2)"``, ``"joint, framewise"``."""
    cfg = model.cfg
    mixer = getattr(cfg, "mixer", "?")
    mixer = mixer if isinstance(mixer, str) else "/".join(mixer)  # one mixer per stage (MViT)
    kw = getattr(cfg, "mixer_kwargs", None) or {}
    label = mixer + (f" ({', '.join(f'{k}={v}' for k, v in sorted(kw.items()))})" if kw else "")
    return label + (", framewise" if getattr(cfg, "framewise", False) else "")


def checkpoint_label(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        return p.name
    if p.stem not in GENERIC_STEMS:
        return p.stem
    run = p.parent.parent if p.parent.name in ("checkpoints", "ckpt", "weights") else p.parent
    return f"{run.name}/{p.stem}" if run.name else p.stem


@dataclass
class VizModel:
    """A model in eval mode on its device, with a short ``label`` for titles and a ``source`` for JSON."""

    model: nn.Module
    label: str
    source: str
    mixer: str
    source_kind: str = "checkpoint"  # checkpoint | model (a random-weight registered model)


def load_viz_model(checkpoint: str | Path | None = None, spec: str | None = None, device: str = "cpu",
                   seed: int = 0) -> VizModel:
    """A trained checkpoint (``load_pretrained``) or a random-weight registered model (``create_model`` with
    ``seed_everything(seed)``, so the same spec gives the same weights)."""
    from ..models import create_model, load_pretrained
    from ..utils.seeding import seed_everything

    if (checkpoint is None) == (spec is None):
        raise UserInputError("give exactly one of a checkpoint or a model spec")
    if checkpoint is not None:
        model = load_pretrained(checkpoint)
        label, source = checkpoint_label(checkpoint), str(checkpoint)
    else:
        name, overrides = parse_model_spec(spec)
        seed_everything(seed)
        model = create_model(name, **overrides)
        shown = {k: v for k, v in overrides.items() if k not in MIXER_KEYS}  # the mixer is shown separately
        extra = ",".join(f"{k}={v}" for k, v in shown.items())
        label, source = f"{name}{':' + extra if extra else ''} (random init)", spec
    model = model.to(device).eval()
    return VizModel(model, label, source, mixer_label(model), "checkpoint" if checkpoint is not None else "model")
