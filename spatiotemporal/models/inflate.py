"""Inflation: 2D weights initialise video and volume models, and ``init_from_checkpoint`` for any pair.

Rules, registered per (source arch, target arch) with ``@register_inflation``:

- ViT -> TimeSformer (the official rules): blocks copied; each mixer's ``inflate_state_dict`` hook adds its own
  keys (divided attention: temporal attention = a copy of the spatial one, ``temporal_fc`` keeps its zero init);
  ``time_embed`` zero (or trunc-normal with ``time_embed_std``); position embeddings resized in 2D.
- ViT -> UNETR: RGB filters summed to one channel (or repeated for C), the 2D patch kernel spread over depth
  (averaged, or on the centre slice), position embeddings resized and repeated over depth; the decoder is fresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import torch
from torch import nn

from ..layers import resize_pos_embed_2d
from ..utils.errors import UserInputError
from ._registry import build_model
from .pretrained import inspect_checkpoint, load_pretrained, load_state_strict
from .timesformer import TimeSformer
from .unetr import UNETR
from .vit import VisionTransformer

log = logging.getLogger("spatiotemporal.models")

Inflation = Callable[..., nn.Module]
INFLATIONS: dict[tuple[str, str], Inflation] = {}


def register_inflation(src_arch: str, dst_arch: str):
    """Decorator for ``fn(src_model, **target_config) -> target model`` initialising ``dst_arch`` from ``src_arch``."""

    def deco(fn: Inflation) -> Inflation:
        INFLATIONS[(src_arch, dst_arch)] = fn
        return fn

    return deco


def inflate_mixers(model: nn.Module, sd: dict[str, torch.Tensor]) -> None:
    """Let every mixer of ``model.encoder`` add its own keys to ``sd`` (its ``inflate_state_dict`` hook)."""
    for i, blk in enumerate(model.encoder.blocks):
        blk.mixer.inflate_state_dict(sd, f"encoder.blocks.{i}.mixer.")


def _fresh_mixer_keys(model: nn.Module, sd: dict) -> tuple[str, ...]:
    """Mixer keys of ``model`` that neither the 2D model nor a hook provided: they keep the model's own init."""
    keys = tuple(k for k in model.state_dict() if ".mixer." in k and k not in sd)
    if keys:
        log.info("inflation: %d mixer tensors start from their own init (e.g. %s)", len(keys), keys[0])
    return keys


def _encoder_shape(vit: VisionTransformer) -> dict:
    c = vit.cfg
    return dict(num_heads=c.num_heads, qkv_bias=c.qkv_bias, norm_eps=c.norm_eps, init_values=c.init_values)


def _vit_pos_grid(vit: VisionTransformer, new_grid: tuple[int, int], mode: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(class-token slot (1, 1, D) or zeros, grid part resized to ``new_grid`` (1, N', D))."""
    pe = vit.pos_embed.detach()
    has_slot = vit.cls_token is not None and not vit.cfg.no_embed_class
    cls_slot = pe[:, :1] if has_slot else pe.new_zeros(1, 1, pe.shape[-1])
    grid = resize_pos_embed_2d(pe[:, int(has_slot):], vit.grid_size, new_grid, 0, mode)
    return cls_slot, grid


def _log_replaced(target: dict, forced: dict, what: str) -> None:
    changed = {k: (target[k], v) for k, v in forced.items() if k in target and target[k] != v}
    if changed:
        log.info("%s: the 2D encoder sets %s", what, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in changed.items()))


@register_inflation("vit", "timesformer")
def inflate_vit_to_timesformer(vit: VisionTransformer, **cfg) -> TimeSformer:
    """A TimeSformer whose spatial weights are the ViT's; ``cfg`` sets frames, size, mixer, classes, ...
    (the encoder's width, depth, heads, patch and norms follow the ViT).

    On a clip of identical frames the result (divided, space-only or framewise) gives the ViT's logits.
    The head is copied when the class counts agree, otherwise freshly initialised. A ViT without a class token
    (GAP or MAP head) gives a TimeSformer without one and with the same head (a MAP head is copied; timm's
    ``fc_norm`` after pooling becomes the norm before it, which is not exact).
    """
    c = vit.cfg
    forced = dict(patch_size=c.patch_size, in_chans=c.in_chans, embed_dim=c.embed_dim, depth=c.depth,
                  mlp_ratio=c.mlp_ratio, **_encoder_shape(vit))
    _log_replaced(cfg, forced, "inflation into TimeSformer")
    base = dict(img_size=c.img_size, num_classes=c.num_classes)
    if vit.cls_token is None:
        base.update(class_token=False, global_pool=c.global_pool)
    model = build_model("timesformer", {**base, **cfg, **forced})
    sd = {k: v for k, v in vit.state_dict().items() if not k.startswith(("pos_embed", "pool.", "fc_norm."))}
    if model.cfg.global_pool == c.global_pool:
        sd.update({k: v for k, v in vit.state_dict().items() if k.startswith("pool.")})
    if c.global_pool == "avg" and c.fc_norm:
        sd.update({"norm." + k[len("fc_norm."):]: v for k, v in vit.state_dict().items() if k.startswith("fc_norm.")})
    if model.cfg.num_classes != c.num_classes:
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
    cls_slot, grid = _vit_pos_grid(vit, model.grid_size, model.cfg.pos_interp)
    sd["pos_embed"] = torch.cat([cls_slot, grid], dim=1) if model.cls_token is not None else grid
    if model.cls_token is None:
        sd.pop("cls_token", None)
    inflate_mixers(model, sd)
    fresh = ("head.",) if "head.weight" not in sd else ()
    fresh += ("pool.",) if not any(k.startswith("pool.") for k in sd) else ()
    fresh += ("cls_token",) if vit.cls_token is None else ()
    fresh += _fresh_mixer_keys(model, sd) + ("time_embed",)
    load_state_strict(model, sd, "inflated ViT", allow_missing=fresh)
    if model.time_embed is not None and model.cfg.time_embed_std == 0:
        nn.init.zeros_(model.time_embed)  # official: a static clip then gives the ViT's logits
    return model


def inflate_patch_kernel(w2d: torch.Tensor, in_channels: int, depth: int, mode: str = "average") -> torch.Tensor:
    """2D patch kernel ``(D, 3, p, p)`` -> 3D ``(D, C, p, p, depth)`` (depth = last axis, MONAI order).

    RGB filters are summed for one channel, or repeated and scaled by 3/C for C channels; the
    kernel is spread over depth either averaged (``average``) or on the centre slice (``center``),
    so a volume whose slices are all equal gives the 2D model's embedding of one slice.
    """
    if mode not in ("average", "center"):
        raise UserInputError(f"depth mode must be 'average' or 'center', got {mode!r}")
    gray = w2d.sum(1, keepdim=True)
    w = gray if in_channels == 1 else gray.repeat(1, in_channels, 1, 1) / in_channels
    if in_channels == w2d.shape[1]:
        w = w2d
    if mode == "average":
        return w.unsqueeze(-1).repeat(1, 1, 1, 1, depth) / depth
    out = w.new_zeros(*w.shape, depth)
    out[..., depth // 2] = w
    return out


@register_inflation("vit", "unetr")
def inflate_vit_to_unetr(vit: VisionTransformer, depth_mode: str = "average", **cfg) -> UNETR:
    """A UNETR whose encoder is the ViT (blocks copied, patch kernel and position embedding made 3D).

    ``cfg`` sets the UNETR's ``img_size``, ``in_channels``, ``out_channels``, ``feature_size``...;
    the encoder's width, depth, heads and norms follow the ViT. The decoder starts fresh.
    """
    c = vit.cfg
    forced = dict(hidden_size=c.embed_dim, mlp_dim=int(c.embed_dim * c.mlp_ratio), num_layers=c.depth,
                  patch_size=c.patch_size, **_encoder_shape(vit))
    _log_replaced(cfg, forced, "inflation into UNETR")
    model = build_model("unetr", {**cfg, **forced})
    gh, gw, gd = model.grid_size
    sd = {k: v for k, v in vit.state_dict().items() if k.startswith(("encoder.", "norm."))}
    sd["patch_embed.proj.weight"] = inflate_patch_kernel(
        vit.patch_embed.proj.weight.detach(), model.cfg.in_channels, model.cfg.patch_size, depth_mode)
    sd["patch_embed.proj.bias"] = vit.patch_embed.proj.bias.detach().clone()
    _, grid = _vit_pos_grid(vit, (gh, gw), "bicubic")
    d = grid.shape[-1]
    sd["pos_embed"] = grid.reshape(1, gh, gw, 1, d).expand(1, gh, gw, gd, d).reshape(1, -1, d)
    inflate_mixers(model, sd)
    decoder = tuple(k for k in model.state_dict() if not k.startswith(("encoder.", "norm.", "patch_embed.", "pos_")))
    fresh = decoder + _fresh_mixer_keys(model, sd)
    load_state_strict(model, sd, "inflated ViT", allow_missing=fresh)
    return model


def init_from_checkpoint(target: nn.Module, checkpoint, source_overrides: dict | None = None,
                         **inflate_kw) -> nn.Module:
    """A model shaped like ``target`` (its config) initialised from any checkpoint ``load_pretrained`` reads.

    Same family: the target's config is kept; embeddings are resized to its grid and the head replaced when
    the output size differs. Another family: the registered inflation rule, e.g. a 2D ViT into TimeSformer or
    UNETR (``inflate_kw`` are its options, ``source_overrides`` what the source checkpoint does not store, such
    as ``num_heads``). Returns the new model in train mode.
    """
    cfg = target.config_dict()
    src_over = dict(source_overrides or {})
    info = inspect_checkpoint(checkpoint, src_over)
    src_arch, dst_arch = info.detected.arch, target.arch
    if src_arch == dst_arch:
        model = load_pretrained(info, **cfg)
    elif (src_arch, dst_arch) in INFLATIONS:
        model = INFLATIONS[(src_arch, dst_arch)](load_pretrained(info, **src_over), **inflate_kw, **cfg)
    else:
        pairs = ", ".join(f"{a} -> {b}" for a, b in sorted(INFLATIONS))
        raise UserInputError(f"{info.name}: a {src_arch} checkpoint cannot initialise a {dst_arch} model "
                             f"(same family, or one of: {pairs})")
    model.model_name = getattr(target, "model_name", None)
    return model.train()
