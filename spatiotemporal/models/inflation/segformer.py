"""Inflation into the SegFormer hierarchy: a 2D SegFormer or a MiT / PVTv2 (timm ``pvt_v2_*``) initialises
``segformer3d``.

Every convolution of the encoder (overlapping patch embeddings, SRA reductions, Mix-FFN depthwise kernels, any
mixer's own convolutions) is spread over depth, the volumes' last axis: averaged (``depth_mode="average"``) or on
the centre slice (``"center"``); the first embedding's RGB filters are summed for one channel (or repeated for
C). Linear layers and norms are copied. The encoder's shape (widths, depths, heads, SR and Mix-FFN ratios, kernels,
strides, mixers) follows the 2D model; from a 2D SegFormer the decoder is inflated too (its 1x1 convolutions gain
a unit axis; the classifier is fresh when the class counts differ), from a classifier it starts fresh.

Exactness, on a volume whose depth slices are all equal (``tests/models/test_inflation_segformer.py``): with
``"center"`` every stage, the decoder and the logits equal the 2D model's on one slice (each convolution reads
only the centre slice, SRA keys are the 2D keys repeated over depth, which a softmax does not change, and
trilinear resizing of depth-constant maps is bilinear). With ``"average"`` only the patch embedding's output at
interior depths is exact: zero padding at the first and last depths changes the boundary tokens, and from the
first attention on every token sees them.
"""

from __future__ import annotations

import logging

import torch

from .._registry import build_model
from ..mit import MixVisionTransformer
from ..pretrained import load_state_strict
from ..segformer import SegFormer, SegFormer3D
from .rules import register_inflation, requested_config
from .stem import inflate_patch_kernel

log = logging.getLogger("spatiotemporal.models")

ENCODER_FIELDS = ("embed_dims", "depths", "num_heads", "sr_ratios", "mlp_ratios", "patch_sizes", "strides",
                  "qkv_bias", "norm_eps", "embed_norm_eps", "mixer", "mixer_kwargs", "ffn", "ffn_kwargs")
FIRST_EMBED = "encoder.stages.0.downsample.proj.weight"


def inflate_multistage_state(src: dict[str, torch.Tensor], target: dict[str, torch.Tensor], in_channels: int,
                             depth_mode: str = "average") -> dict[str, torch.Tensor]:
    """The 2D tensors of ``src`` shaped for ``target`` (a 3D model's state dict): a weight with one axis more in
    ``target`` is a convolution spread over its depth (last) axis; equal shapes are copied; keys the target lacks or
    that do not fit (another class count) are left out, so they keep the target's initialisation."""
    out = {}
    for k, v in src.items():
        if k not in target:
            continue
        t = target[k]
        if t.ndim == v.ndim + 1 and v.ndim == 4:
            cin = in_channels if k == FIRST_EMBED else v.shape[1]
            out[k] = inflate_patch_kernel(v, cin, t.shape[-1], depth_mode)
        elif t.shape == v.shape:
            out[k] = v.clone()
        if k in out and out[k].shape != t.shape:
            del out[k]
    return out


def _inflate(src2d: MixVisionTransformer | SegFormer, depth_mode: str, cfg: dict) -> SegFormer3D:
    c = src2d.cfg
    forced = {f: getattr(c, f) for f in ENCODER_FIELDS}
    if isinstance(src2d, SegFormer):
        forced["decoder_dim"] = c.decoder_dim
    model = requested_config(build_model("segformer3d", {**cfg, **forced}), cfg)
    target = model.state_dict()
    sd = inflate_multistage_state(src2d.state_dict(), target, model.cfg.in_chans, depth_mode)
    fresh = tuple(k for k in target if k not in sd)
    if fresh:
        log.info("inflation into segformer3d: %d tensors start from their own init (e.g. %s)", len(fresh), fresh[0])
    load_state_strict(model, sd, "inflated 2D model", allow_missing=fresh)
    return model


@register_inflation("segformer", "segformer3d")
def inflate_segformer_to_3d(src: SegFormer, depth_mode: str = "average", **cfg) -> SegFormer3D:
    """A SegFormer3D whose encoder and decoder are the 2D SegFormer's, inflated; ``cfg`` sets ``img_size``,
    ``in_chans``, ``num_classes`` (the classifier is kept when the class count is the same)."""
    return _inflate(src, depth_mode, cfg)


@register_inflation("mit", "segformer3d")
def inflate_mit_to_3d(src: MixVisionTransformer, depth_mode: str = "average", **cfg) -> SegFormer3D:
    """A SegFormer3D whose encoder is a MiT / PVTv2 classifier's (e.g. timm ``pvt_v2_b0``), inflated; the decoder
    starts fresh."""
    return _inflate(src, depth_mode, cfg)


__all__ = ["inflate_mit_to_3d", "inflate_multistage_state", "inflate_segformer_to_3d"]
