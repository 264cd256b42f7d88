"""Inflation of 2D MViTv2 weights (ours or timm's ``mvitv2_*``) into the video MViT and the volume MViT-UNETR.

The trunk's shape (widths, heads, depths, strides and kernels on the two image axes, pooling options) follows the
2D model; the target chooses the new axis's kernel and strides (time for videos, depth for volumes). Rules:

- every convolution kernel (patch embedding, Q/K/V pooling) gets the new axis: on its centre slice (``center``,
  the default) or spread evenly (``average``); RGB patch filters are summed for one input channel (volumes);
- relative-position tables of the two image axes are copied (and resized to the target's grid); the table of the
  new axis starts at zero, so at first the new axis does not change any attention logit;
- a temporal absolute position embedding (v1) repeats the 2D model's one slot over the frames; the rest is
  copied; the classifier is copied when the class counts agree; the volume decoder starts fresh.

Exactness: with ``center`` a clip of identical frames gives the 2D model's logits, and a volume whose depth slices
are equal gives the 2D model's stage features on every slice (tests). With ``average`` this fails near the borders
of the new axis: the zero padding of the patch embedding and of every 3x3x3 pooling convolution makes the first
and last positions see less than a full kernel of frames.
"""

from __future__ import annotations

import torch
from torch import nn

from .._registry import build_model
from ..mvit import MViT, MViTImage
from ..mvit_unetr import MViTUNETR
from ..pretrained import load_state_strict
from .rules import register_inflation, requested_config
from .stem import inflate_patch_kernel

#: The trunk options a 2D model decides for its inflated copy.
_SHARED = ("embed_dim", "num_heads", "depths", "mlp_ratio", "qkv_bias", "norm_eps", "pool_norm_eps",
           "pool_q_every_block", "expand_attn", "residual_pool", "residual_pool_prefix", "rel_pos", "abs_pos", "mixer",
           "mixer_kwargs")


def _with_new_axis(src: tuple, dst: tuple, axis: int) -> tuple:
    """The 2D model's values on the image axes (the last two of ``src``) and the target's on its new ``axis``."""
    plane = list(src[-2:])
    plane.insert(axis, dst[axis])
    return tuple(plane)


def _forced(src: MViTImage, target_cls: type, cfg: dict, axis: int) -> dict:
    """The target config values the 2D model decides (kernels and strides: on its two image axes)."""
    defaults = target_cls.config_cls()
    forced = {k: getattr(src.cfg, k) for k in _SHARED}
    for k in ("patch_kernel", "patch_stride", "kernel_q", "kernel_kv", "stride_q", "stride_kv"):
        forced[k] = _with_new_axis(tuple(getattr(src.cfg, k)), tuple(cfg.get(k, getattr(defaults, k))), axis)
    return forced


def inflate_kernel(w: torch.Tensor, in_channels: int, size: int, axis: int, mode: str) -> torch.Tensor:
    """2D kernel ``(O, I, kh, kw)`` -> 3D with ``size`` taps on grid ``axis`` (0: before h, 2: after w)."""
    w3 = inflate_patch_kernel(w, in_channels, size, mode)  # new axis last
    return w3 if axis == 2 else w3.movedim(-1, 2 + axis)


def _inflate_state(src: MViTImage, model: nn.Module, axis: int, mode: str, keep: tuple[str, ...]) -> dict:
    """The 2D weights in the target's names and shapes (keys the target lacks are dropped, see the module)."""
    own, src_sd = model.state_dict(), src.state_dict()
    sd = {}
    for k, v in src_sd.items():
        if k not in own or not k.startswith(keep):
            continue
        target = own[k]
        if v.ndim == 4 and target.ndim == 5:
            size = target.shape[2 + axis]
            v = inflate_kernel(v.detach(), target.shape[1], size, axis, mode)
        sd[k] = v.detach().clone()
    new_axis = {0: "t", 2: "d"}[axis]
    for k, v in own.items():
        if k.endswith(f".rel_pos_{new_axis}"):
            sd[k] = torch.zeros_like(v)
    if "pos_embed_temporal" in sd:  # the 2D model's one slot, on every frame
        sd["pos_embed_temporal"] = sd["pos_embed_temporal"].expand_as(own["pos_embed_temporal"]).clone()
    model.resize_state_dict(sd, src.config_dict(), "inflated MViT")
    return sd


@register_inflation("mvit_image", "mvit")
def inflate_mvit_image_to_video(src: MViTImage, depth_mode: str = "center", **cfg) -> MViT:
    """A video MViT whose trunk is the 2D MViTv2's (see the module); ``cfg`` sets frames, size, classes, the
    temporal kernels and strides. ``depth_mode``: how kernels spread over time (``center`` | ``average``)."""
    forced = _forced(src, MViT, cfg, axis=0)
    forced.update(class_token=src.cfg.class_token, global_pool=src.cfg.global_pool, in_chans=src.cfg.in_chans)
    requested = {"img_size": src.cfg.img_size, "num_classes": src.cfg.num_classes, **cfg}
    model = requested_config(build_model("mvit", {**requested, **forced}), requested)
    keep = ("patch_embed.", "cls_token", "pos_embed_", "encoder.", "norm.", "pool.")
    if model.cfg.num_classes == src.cfg.num_classes:
        keep += ("head.",)
    sd = _inflate_state(src, model, 0, depth_mode, keep)
    load_state_strict(model, sd, "inflated 2D MViT", allow_missing=("head.",))
    return model


@register_inflation("mvit_image", "mvit_unetr")
def inflate_mvit_image_to_volume(src: MViTImage, depth_mode: str = "center", **cfg) -> MViTUNETR:
    """An MViT-UNETR whose encoder is the 2D MViTv2's (see the module); ``cfg`` sets the volume size, channels,
    classes, the depth kernels and strides. The decoder starts fresh."""
    if src.cfg.class_token or src.cfg.abs_pos:
        raise ValueError("MViT-UNETR has no class token and no absolute positions; inflate a 2D MViTv2 without "
                         "them (timm mvitv2_tiny .. mvitv2_large)")
    forced = _forced(src, MViTUNETR, cfg, axis=2)
    forced.update(class_token=False)
    model = requested_config(build_model("mvit_unetr", {**cfg, **forced}), cfg)
    sd = _inflate_state(src, model, 2, depth_mode, ("patch_embed.", "pos_embed_", "encoder."))
    decoder = tuple(k for k in model.state_dict() if not k.startswith(("patch_embed.", "pos_embed_", "encoder.")))
    load_state_strict(model, sd, "inflated 2D MViT", allow_missing=decoder)
    return model
