"""Inflation of the 2D MLP-Mixer, ConvMixer and XCiT into the video (TimeSformer) and volume (UNETR) encoders.

The target's encoder takes the 2D model's block design (mixer, FFN, widths, LayerScale), so the blocks are copied
key for key; each mixer's ``inflate_state_dict`` hook makes its own weights fit the new grid:

- ``mlp_mixer``: the token MLP over the 2D grid resampled to the video / volume grid (repeated along time or depth,
  ``fc1`` divided by the repeat; :func:`~spatiotemporal.layers.resize_token_weights`);
- ``convmixer``: the depthwise kernel kept per frame with a temporal depthwise convolution starting as the
  identity ((2+1)D, videos), or put on the centre depth slice of a 3D kernel (volumes);
- ``xca``: XCA does not depend on the grid; LPI runs per frame on videos, and its 3x3 kernels go on the centre
  slice of 3x3x3 kernels on volumes.

On a static clip (every frame equal), or a volume whose slices along depth are all equal, the inflated encoder's
tokens are exactly the 2D encoder's tokens of that image, repeated (tests). Around the encoder:

- TimeSformer: no class token and GAP (the 2D models pool their tokens), patch kernel copied when the stem is a
  single patch convolution (MLP-Mixer; ConvMixer's stem convolution without its activation and BatchNorm), final
  norm and head copied where the 2D model has them (MLP-Mixer: the whole inflated model gives the 2D logits on a
  static clip, a test). XCiT's convolutional stem, its Fourier encoding and its class-attention layers have no
  counterpart in TimeSformer: its patch embedding starts fresh, its position embedding takes the Fourier encoding
  of the 2D grid, and the head is fresh.
- UNETR: the decoder starts fresh; the patch kernel is made 3D (``inflate_patch_kernel``) when the 2D model's is a
  single convolution of a power-of-two patch size (MLP-Mixer), else it starts fresh.
"""

from __future__ import annotations

import torch
from torch import nn

from ._registry import build_model
from .convmixer import ConvMixer
from .encoder import EncoderConfig
from .inflate import _fresh_mixer_keys, _log_replaced, inflate_mixers, inflate_patch_kernel, register_inflation
from .mlp_mixer import MlpMixer
from .pretrained import load_state_strict
from .timesformer import TimeSformer
from .unetr import UNETR
from .xcit import XCiT


def _timesformer_encoder(e: EncoderConfig) -> dict:
    return dict(embed_dim=e.dim, depth=e.depth, num_heads=e.num_heads, mixer=e.mixer, mixer_kwargs=e.mixer_kwargs,
                ffn=e.ffn, ffn_kwargs=e.ffn_kwargs, mlp_ratio=e.mlp_ratio, qkv_bias=e.qkv_bias, norm_eps=e.norm_eps,
                init_values=e.init_values)


def _unetr_encoder(e: EncoderConfig) -> dict:
    return dict(hidden_size=e.dim, num_layers=e.depth, num_heads=e.num_heads, mixer=e.mixer,
                mixer_kwargs=e.mixer_kwargs, ffn=e.ffn, ffn_kwargs=e.ffn_kwargs, mlp_dim=int(e.dim * e.mlp_ratio),
                qkv_bias=e.qkv_bias, norm_eps=e.norm_eps, init_values=e.init_values)


def _load(model: nn.Module, sd: dict, src_name: str) -> nn.Module:
    """Mixer hooks, then a strict load in which every key the 2D model did not provide keeps its own init."""
    inflate_mixers(model, sd)
    fresh = tuple(k for k in model.state_dict() if k not in sd and ".mixer." not in k)
    load_state_strict(model, sd, f"inflated {src_name}", allow_missing=fresh + _fresh_mixer_keys(model, sd))
    return model


def _to_timesformer(src: nn.Module, cfg: dict, stem: bool, keep: tuple[str, ...]) -> TimeSformer:
    c = src.cfg
    forced = _timesformer_encoder(c.encoder())
    if stem:
        forced.update(patch_size=c.patch_size, in_chans=c.in_chans)
    _log_replaced(cfg, forced, f"inflation of {src.arch} into TimeSformer")
    base = dict(img_size=c.img_size, num_classes=c.num_classes, class_token=False, global_pool="avg")
    model = build_model("timesformer", {**base, **cfg, **forced})
    state = src.state_dict()
    sd = {k: v for k, v in state.items() if k.startswith(("encoder.",) + keep)}
    if stem:
        sd.update({k: v for k, v in state.items() if k.startswith("patch_embed.proj.")})
    if "head.weight" in sd and sd["head.weight"].shape != model.state_dict()["head.weight"].shape:
        sd = {k: v for k, v in sd.items() if not k.startswith("head.")}
    _load(model, sd, src.arch)
    if model.time_embed is not None and model.cfg.time_embed_std == 0:
        nn.init.zeros_(model.time_embed)  # a static clip then gives the 2D model's tokens
    return model


def _to_unetr(src: nn.Module, cfg: dict, depth_mode: str, stem: bool, keep: tuple[str, ...] = ()) -> UNETR:
    forced = _unetr_encoder(src.cfg.encoder())
    if stem:
        forced["patch_size"] = src.cfg.patch_size
    _log_replaced(cfg, forced, f"inflation of {src.arch} into UNETR")
    model = build_model("unetr", {**cfg, **forced})
    state = src.state_dict()
    sd = {k: v for k, v in state.items() if k.startswith(("encoder.",) + keep)}
    if stem:
        sd["patch_embed.proj.weight"] = inflate_patch_kernel(
            state["patch_embed.proj.weight"], model.cfg.in_channels, model.cfg.patch_size, depth_mode)
        sd["patch_embed.proj.bias"] = state["patch_embed.proj.bias"].clone()
        sd["pos_embed"] = torch.zeros_like(model.pos_embed)  # the 2D model has no position embedding
    return _load(model, sd, src.arch)


@register_inflation("mlp_mixer", "timesformer")
def inflate_mixer_to_timesformer(src: MlpMixer, **cfg) -> TimeSformer:
    """A TimeSformer (GAP, no class token, zero position and time embeddings) with the Mixer's blocks; on a static
    clip it gives the Mixer's logits. ``cfg`` sets frames, size, classes, ..."""
    model = _to_timesformer(src, cfg, stem=True, keep=("norm.", "head."))
    with torch.no_grad():
        model.pos_embed.zero_()
    return model


@register_inflation("convmixer", "timesformer")
def inflate_convmixer_to_timesformer(src: ConvMixer, **cfg) -> TimeSformer:
    """A TimeSformer with the ConvMixer's blocks in (2+1)D (temporal convolutions start as the identity), its
    stem convolution as the patch embedding, GAP and its head; position and time embeddings start at zero."""
    model = _to_timesformer(src, cfg, stem=True, keep=("head.",))
    with torch.no_grad():
        model.pos_embed.zero_()
    return model


@register_inflation("xcit", "timesformer")
def inflate_xcit_to_timesformer(src: XCiT, **cfg) -> TimeSformer:
    """A TimeSformer with XCiT's XCA + LPI blocks (LPI per frame) and its Fourier position encoding of the 2D grid;
    the patch embedding, the GAP head's classifier and the time embedding start fresh (see the module docstring)."""
    model = _to_timesformer(src, cfg, stem=False, keep=())
    gh, gw = model.grid_size
    with torch.no_grad():
        model.pos_embed[:, model.num_prefix:] = src.pos_embed(1, gh, gw).flatten(2).transpose(1, 2)
    return model


@register_inflation("mlp_mixer", "unetr")
def inflate_mixer_to_unetr(src: MlpMixer, depth_mode: str = "average", **cfg) -> UNETR:
    """A UNETR whose encoder is the Mixer's (token MLPs resampled to the 3D grid, the patch kernel made 3D)."""
    return _to_unetr(src, cfg, depth_mode, stem=src.cfg.patch_size in (4, 8, 16, 32), keep=("norm.",))


@register_inflation("convmixer", "unetr")
def inflate_convmixer_to_unetr(src: ConvMixer, depth_mode: str = "average", **cfg) -> UNETR:
    """A UNETR whose encoder blocks are the ConvMixer's, in 3D (kernels on the centre depth slice)."""
    return _to_unetr(src, cfg, depth_mode, stem=False)


@register_inflation("xcit", "unetr")
def inflate_xcit_to_unetr(src: XCiT, depth_mode: str = "average", **cfg) -> UNETR:
    """A UNETR whose encoder blocks are XCiT's (XCA + 3D LPI, kernels on the centre depth slice)."""
    return _to_unetr(src, cfg, depth_mode, stem=False)
