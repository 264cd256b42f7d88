"""What the MViT converters (torchvision, pytorchvideo, timm) share: the stage of each block of a
flat block list, and the trunk facts a state dict stores (widths, heads, depths, MLP ratio)."""

from __future__ import annotations

import re

import torch


def block_count(sd: dict, prefix: str = "blocks.") -> int:
    idx = {int(m.group(1)) for k in sd if (m := re.match(re.escape(prefix) + r"(\d+)\.", k))}
    return max(idx) + 1 if idx else 0


def stage_positions(widens: list[bool], expand_attn: bool) -> list[tuple[int, int]]:
    """``(stage, index in stage)`` of each block of a flat list: a block that widens the channels starts a stage
    (MViTv2: in its attention) or ends one (v1: in its MLP)."""
    out, stage, j = [], 0, 0
    for k, widens_here in enumerate(widens):
        if expand_attn and widens_here and k:
            stage, j = stage + 1, 0
        out.append((stage, j))
        j += 1
        if not expand_attn and widens_here:
            stage, j = stage + 1, 0
    return out


def restage(sd: dict[str, torch.Tensor], positions: list[tuple[int, int]]) -> dict[str, torch.Tensor]:
    """``blocks.{k}.*`` -> ``encoder.stages.{i}.blocks.{j}.*``."""
    out = {}
    for k, v in sd.items():
        m = re.match(r"^blocks\.(\d+)\.(.*)$", k)
        if m:
            i, j = positions[int(m.group(1))]
            k = f"encoder.stages.{i}.blocks.{j}.{m.group(2)}"
        out[k] = v
    return out


def trunk_config(sd: dict[str, torch.Tensor], embed_dim: int, head_dim: int) -> dict:
    """``depths``, ``num_heads`` and ``mlp_ratio`` of a state dict in our names (``encoder.stages.{i}.blocks.{j}``),
    checking that its widths and heads double per stage as our trunk builds them."""
    depths = []
    while block_count(sd, f"encoder.stages.{len(depths)}.blocks."):
        depths.append(block_count(sd, f"encoder.stages.{len(depths)}.blocks."))
    heads = embed_dim // head_dim
    for i, _ in enumerate(depths):
        w = sd[f"encoder.stages.{i}.blocks.0.mixer.proj.weight"].shape[0]
        if w != embed_dim * 2**i or w // head_dim != heads * 2**i:
            raise ValueError(f"stage {i} has width {w} and {w // head_dim} heads of {head_dim}; the MViT trunk "
                             f"doubles both per stage from {embed_dim} and {heads}")
    fc1 = sd["encoder.stages.0.blocks.0.ffn.fc1.weight"]
    return dict(embed_dim=embed_dim, num_heads=heads, depths=tuple(depths), mlp_ratio=fc1.shape[0] / fc1.shape[1])


def head_dim_of(sd: dict[str, torch.Tensor]) -> int:
    """The head width, from any depthwise pooling convolution (shared across heads, one filter per channel)."""
    for k, v in sd.items():
        if re.search(r"\.mixer\.pool_[qkv]\.weight$", k):
            return v.shape[0]
    raise ValueError("no pooling convolution found: cannot tell the head width (pass num_heads)")


def assumed_strides(fmt: str, **published) -> dict[tuple[str, ...], str]:
    """``Detected.assumed`` for an MViT layout that stores no strides: the published ones (every stride gives
    weights of the same shapes), unless the caller passes all of them."""
    said = ", ".join(f"{k}={v}" for k, v in published.items())
    return {tuple(published): f"{fmt} stores no strides: assumed the published {said}; a model trained with other "
                              "strides gives other outputs: pass them to load_pretrained to set them"}
