"""Model initialisation: one generic pass over linear layers, then each module's own ``init_weights`` hook."""

from __future__ import annotations

from timm.layers import trunc_normal_
from torch import nn


def init_weights_(module: nn.Module, std: float = 0.02) -> None:
    """timm's ViT rule on every ``nn.Linear`` below ``module`` (trunc-normal weights, zero biases), then every
    submodule's ``init_weights()`` (e.g. ``temporal_fc`` at zero in divided attention, timm's MAP latent)."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            trunc_normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    for m in module.modules():
        if m is not module and callable(getattr(m, "init_weights", None)):
            m.init_weights()


def no_weight_decay_names(module: nn.Module) -> set[str]:
    """Full parameter names that submodules ask to exclude from weight decay (their ``no_weight_decay()``)."""
    names: set[str] = set()
    for prefix, m in module.named_modules():
        if m is module or not callable(getattr(m, "no_weight_decay", None)):
            continue
        names |= {f"{prefix}.{n}" for n in m.no_weight_decay()}
    return names
