"""Optimiser construction on top of ``timm.optim`` (SGD-Nesterov, AdamW, LAMB, Adafactor).

Parameter groups come from timm (``param_groups_weight_decay`` / ``param_groups_layer_decay``): no decay
on 1-D tensors and on the model's ``no_weight_decay()`` names, optional layer-wise lr decay. On top of
that, ``head_weight_decay`` gives the classifier head its own decay (decoupled head / body decay,
Scaling ViT: body 0.03, head 3.0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from timm.optim import create_optimizer_v2
from timm.optim._param_groups import param_groups_layer_decay, param_groups_weight_decay

from ..utils.config import ConfigError

__all__ = ["OptimConfig", "build_optimizer", "param_groups"]


@dataclass
class OptimConfig:
    """Optimiser settings. ``betas`` / ``eps`` = None keep the optimiser's own defaults."""

    name: Literal["adamw", "sgd", "lamb", "adafactor", "adafactorbv"] = "adamw"
    lr: float = 1e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    nesterov: bool = True
    betas: tuple[float, float] | None = None
    eps: float | None = None
    head_weight_decay: float | None = None
    head_prefix: str = "head"
    no_decay_1d: bool = True
    use_no_weight_decay: bool = True  # honour model.no_weight_decay() (pos/cls embeddings in timm ViTs)
    layer_decay: float | None = None

    def __post_init__(self) -> None:
        for name in ("lr", "weight_decay", "head_weight_decay", "momentum"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0):
                raise ConfigError(f"train.optim.{name} must be a finite number >= 0, got {value}")
        if self.layer_decay is not None and not 0 < self.layer_decay <= 1:
            raise ConfigError(f"train.optim.layer_decay must be in (0, 1] or null (off), got {self.layer_decay}")


def param_groups(model: torch.nn.Module, cfg: OptimConfig) -> list[dict[str, Any]]:
    """Parameter groups with per-group ``weight_decay`` (and ``lr_scale`` when ``layer_decay`` is set)."""
    skip = set(model.no_weight_decay()) if cfg.use_no_weight_decay and hasattr(model, "no_weight_decay") else ()
    if cfg.layer_decay is not None:
        groups = param_groups_layer_decay(
            model,
            weight_decay=cfg.weight_decay,
            no_weight_decay_list=skip,
            weight_decay_exclude_1d=cfg.no_decay_1d,
            layer_decay=cfg.layer_decay,
        )
    else:
        groups = param_groups_weight_decay(
            model, weight_decay=cfg.weight_decay, weight_decay_exclude_1d=cfg.no_decay_1d,
            no_weight_decay_list=skip,
        )
    groups = [dict(g) for g in groups if g["params"]]
    if cfg.head_weight_decay is None:
        return groups
    names = {id(p): n for n, p in model.named_parameters()}
    out = []
    for g in groups:
        if g.get("weight_decay", 0.0) == 0.0:
            out.append(g)
            continue
        head = [p for p in g["params"] if names[id(p)].startswith(cfg.head_prefix)]
        body = [p for p in g["params"] if not names[id(p)].startswith(cfg.head_prefix)]
        if body:
            out.append({**g, "params": body})
        if head:
            out.append({**g, "params": head, "weight_decay": cfg.head_weight_decay})
    return out


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    """Create the optimiser named by ``cfg.name`` over :func:`param_groups` (timm's factory)."""
    kwargs: dict[str, Any] = {}
    if cfg.name == "sgd":
        kwargs["nesterov"] = cfg.nesterov
    if cfg.betas is not None:
        kwargs["betas"] = tuple(cfg.betas)
    if cfg.eps is not None:
        kwargs["eps"] = cfg.eps
    return create_optimizer_v2(
        param_groups(model, cfg), opt=cfg.name, lr=cfg.lr, weight_decay=cfg.weight_decay,
        momentum=cfg.momentum, **kwargs,
    )
