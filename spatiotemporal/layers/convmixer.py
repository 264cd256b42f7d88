"""ConvMixer token mixing on any grid: a depthwise convolution, the activation and BatchNorm (with the block's
residual), and the block's non-residual pointwise part as a feed-forward layer.

FLOPs (batch 1, a multiply-add counts 2; ``L`` grid tokens, width ``d``; activation, BatchNorm and biases not
counted): ``convmixer`` 2D ``2 * L * d * k^2``, (2+1)D ``2 * L * d * (k^2 + k_t)``, 3D ``2 * L * d * k^3``;
``convmixer_pointwise`` ``2 * L * d^2``.
"""

from __future__ import annotations

import torch
from torch import nn

from .conv_grid import apply_on_grid, centre_slice_kernel, conv_nd
from .grid import Grid, GridLayout, check_grid, group_along, mean_to_prefix, split_prefix, ungroup_along
from .mixer import TokenMixer
from .registry import register_ffn, register_mixer

ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU}
CONV_MODES = ("2d", "2+1d", "3d")


def _activation(name: str, what: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"{what}: act must be one of {sorted(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]()


class TokenBatchNorm(nn.BatchNorm1d):
    """BatchNorm over the tokens of each channel, ``(B, N, C) -> (B, N, C)``: the statistics of a BatchNorm2d/3d
    on the token map, with its keys."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


@register_mixer("convmixer")
class ConvMixerMixer(TokenMixer):
    """``BN(act(DWConv(x)))`` on the grid tokens (ConvMixer's residual half; the block adds ``x``).

    ``conv``: ``"2d"`` (k x k per slice along the time/depth axis, images), ``"2+1d"`` (k x k per slice, then a
    depthwise ``temporal_kernel`` convolution along the time/depth axis, before the activation) or ``"3d"``
    (k x k x k); default ``2d`` on images, ``2+1d`` on videos, ``3d`` on volumes. No pre-norm (ConvMixer has none;
    the BatchNorm follows the activation); ``num_heads`` and ``qkv_bias`` are not used. Prefix tokens receive the
    mean of the grid tokens' update. ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``.
    """

    model_options = {"kernel_size": "kernel_size", "act": "act"}

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, kernel_size: int = 9, conv: str | None = None, temporal_kernel: int = 3,
                 act: str = "gelu"):
        super().__init__()
        if conv is None:
            conv = "3d" if layout.is_volume else ("2+1d" if layout.slice_axis is not None else "2d")
        if conv not in CONV_MODES:
            raise ValueError(f"mixer 'convmixer': conv must be one of {CONV_MODES}, got {conv!r}")
        self.mode = conv
        self.axis = layout.slice_axis if layout.slice_axis is not None else 0
        self.conv = conv_nd(3 if conv == "3d" else 2)(dim, dim, kernel_size, groups=dim, padding="same")
        if conv == "2+1d":
            self.conv_t = nn.Conv1d(dim, dim, temporal_kernel, groups=dim, padding="same")
        self.act = _activation(act, "mixer 'convmixer'")
        self.bn = TokenBatchNorm(dim)
        self.init_weights()

    def init_weights(self) -> None:
        """The temporal convolution starts as the identity (a centred delta): a fresh (2+1)D mixer mixes each frame
        on its own until training moves it."""
        if self.mode == "2+1d":
            _delta_(self.conv_t.weight, self.conv_t.bias, axis=-1)

    def inflate_state_dict(self, sd: dict[str, torch.Tensor], prefix: str) -> None:
        """From a 2D ConvMixer's ``conv`` (``(C, 1, k, k)``): (2+1)D keeps it and starts ``conv_t`` as the identity;
        3D puts it on the centre slice of the time/depth axis. Either way a static input gives the 2D output."""
        key = prefix + "conv.weight"
        if key not in sd or sd[key].ndim != 4:
            return
        if self.mode == "2+1d" and prefix + "conv_t.weight" not in sd:
            w, b = torch.empty_like(self.conv_t.weight), torch.empty_like(self.conv_t.bias)
            _delta_(w, b, axis=-1)
            sd[prefix + "conv_t.weight"], sd[prefix + "conv_t.bias"] = w, b
        if self.mode == "3d":
            sd[key] = centre_slice_kernel(sd[key], self.axis)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        _, tokens = split_prefix(x, num_prefix)
        y = apply_on_grid(self.conv, tokens, grid, 3 if self.mode == "3d" else 2, self.axis)
        if self.mode == "2+1d":
            seq = group_along(y, grid, self.axis).transpose(1, 2)  # (B', C, G_axis)
            y = ungroup_along(self.conv_t(seq).transpose(1, 2), grid, self.axis)
        return mean_to_prefix(self.bn(self.act(y)), num_prefix)


def _delta_(weight: torch.Tensor, bias: torch.Tensor, axis: int) -> None:
    """A depthwise kernel that passes its input through: 1 at the centre of ``axis``, 0 elsewhere; zero bias."""
    with torch.no_grad():
        weight.zero_()
        weight.select(axis, weight.shape[axis] // 2).fill_(1.0)
        bias.zero_()


@register_ffn("convmixer_pointwise")
class ConvMixerPointwise(TokenMixer):
    """ConvMixer's second half, ``BN(act(Conv1x1(x)))``, which has *no* residual: it returns ``f(x) - x`` so that
    the block's ``x + ffn(x)`` is ``f(x)``. ``hidden_dim`` is not used (the pointwise convolution keeps the width).
    ``forward(x (B, L, C), grid, num_prefix) -> (B, L, C)``.
    """

    model_options = {"act": "act"}

    def __init__(self, dim: int, *, hidden_dim: int, layout: GridLayout | None = None, norm_layer=nn.LayerNorm,
                 act: str = "gelu"):
        super().__init__()
        self.pw = nn.Linear(dim, dim)
        self.act = _activation(act, "ffn 'convmixer_pointwise'")
        self.bn = TokenBatchNorm(dim)

    def forward(self, x: torch.Tensor, grid: Grid | None = None, num_prefix: int = 0) -> torch.Tensor:
        return self.bn(self.act(self.pw(x))) - x
