"""Cross-covariance attention with local patch interaction (XCiT), on any token grid."""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from .conv_grid import apply_on_grid, batchnorm_nd, centre_slice_kernel, conv_nd, default_ndim, slice_axis
from .grid import Grid, GridLayout, check_grid, split_prefix
from .mixer import TokenMixer
from .registry import register_mixer
from .sdpa import attend


class XCA(nn.Module):
    """Cross-covariance attention, ``(B, N, C) -> (B, N, C)``; the attention map is ``(d_h, d_h)`` per head.

    q and k are L2-normalised along the token axis in fp32 (fp16 rounds the 1e-12 clamp to 0 and
    gives NaN for an all-zero channel), scaled by a per-head ``temperature``, and the channel
    softmax attention runs through SDPA with the channels as the "sequence".
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True):
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 4, 1)
        q, k, v = qkv.unbind(0)  # (B, h, d_h, N)
        dtype = v.dtype
        q = (F.normalize(q.float(), dim=-1) * self.temperature.float()).to(dtype)
        k = F.normalize(k.float(), dim=-1).to(dtype)
        out = attend(q, k, v, scale=1.0)  # (B, h, d_h, N)
        return self.proj(out.permute(0, 3, 1, 2).reshape(b, n, c))


class LPI(nn.Module):
    """Local patch interaction: depthwise conv -> GELU -> BatchNorm -> depthwise conv on the grid.

    ``ndim=2`` uses k x k convolutions per slice along ``axis`` (XCiT on images / per frame);
    ``ndim=3`` uses k x k x k convolutions on the whole grid. ``(B, N, C) -> (B, N, C)``.
    """

    def __init__(self, dim: int, kernel_size: int = 3, ndim: int = 2, axis: int = 0):
        super().__init__()
        conv = conv_nd(ndim)
        self.ndim = ndim
        self.axis = axis
        self.conv1 = conv(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.act = nn.GELU()
        self.bn = batchnorm_nd(ndim)(dim)
        self.conv2 = conv(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)

    def _spatial(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.bn(self.act(self.conv1(x))))

    def forward(self, x: torch.Tensor, grid: Grid) -> torch.Tensor:
        return apply_on_grid(self._spatial, x, grid, self.ndim, self.axis)


@register_mixer("xca")
class XCAttention(TokenMixer):
    """The XCiT mixer: ``XCA`` over all tokens, then ``LPI`` on the grid tokens (prefix untouched).

    LPI is 2D per slice along the time/depth axis (``ndim=2``) or 3D (``ndim=3``); default: 3 on volumes,
    2 otherwise. ``layer_scale`` (XCiT's eta) adds XCiT's own per-channel scales on XCA and LPI; use it with the
    block's LayerScale off and the FFN's ``layer_scale`` on, as the XCiT model does.
    FLOPs (batch 1, ``L`` tokens, width ``d``, ``h`` heads; ``docs/mixers.md``): ``8 L d^2 + 4 L d^2 / h`` for XCA,
    plus ``2 * 2 * 9 L d`` for LPI's two depthwise 3x3 convolutions (``2 * 2 * 27 L d`` with 3x3x3).
    ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``.
    """

    model_options = {"layer_scale": "eta"}

    @classmethod
    def from_model_config(cls, enc, cfg, slot: str):
        """XCiT's LayerScale: a model config with ``eta`` and the ``mlp`` FFN puts it on XCA, LPI and the MLP (gamma1,
        gamma3, gamma2) and turns the block's LayerScale off; with another FFN the block's LayerScale takes it."""
        eta = getattr(cfg, cls.model_options["layer_scale"], None)
        if eta is None or enc.ffn != "mlp":
            return enc
        return replace(enc, mixer_kwargs={"layer_scale": eta, **enc.mixer_kwargs},
                       ffn_kwargs={"layer_scale": eta, **enc.ffn_kwargs}, init_values=None)

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, ndim: int | None = None, lpi_kernel: int = 3,
                 layer_scale: float | None = None):
        super().__init__()
        self.norm = norm_layer(dim)
        self.attn = XCA(dim, num_heads, qkv_bias)
        self.lpi_norm = norm_layer(dim)
        self.lpi = LPI(dim, lpi_kernel, default_ndim(layout, ndim), slice_axis(layout))
        if layer_scale is not None:  # XCiT's own LayerScale: gamma1 on XCA, gamma3 on LPI (the block's ls1 is off)
            self.gamma1 = nn.Parameter(torch.full((dim,), float(layer_scale)))
            self.gamma3 = nn.Parameter(torch.full((dim,), float(layer_scale)))
        self.layer_scale = layer_scale

    def no_weight_decay(self) -> set[str]:
        """XCiT excludes the per-head temperature from weight decay."""
        return {"attn.temperature"}

    def inflate_state_dict(self, sd: dict[str, torch.Tensor], prefix: str) -> None:
        """A 3D LPI from a 2D one (XCiT): each 3x3 kernel on the centre slice of the time/depth axis, so an input whose
        slices are all equal gives the 2D LPI of each slice (XCA itself does not depend on the grid)."""
        if self.lpi.ndim != 3:
            return
        for name in ("lpi.conv1.weight", "lpi.conv2.weight"):
            if prefix + name in sd and sd[prefix + name].ndim == 4:
                sd[prefix + name] = centre_slice_kernel(sd[prefix + name], self.lpi.axis)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        d1 = self.attn(self.norm(x))
        if self.layer_scale is not None:
            d1 = self.gamma1 * d1
        prefix, tokens = split_prefix(self.lpi_norm(x + d1), num_prefix)
        d2 = self.lpi(tokens, grid)
        if self.layer_scale is not None:
            d2 = self.gamma3 * d2
        return d1 + torch.cat([torch.zeros_like(prefix), d2], dim=1)
