"""MLP-Mixer token mixing: the full-grid token MLP of the paper, and a factorised per-axis token MLP.

FLOPs (batch 1, a multiply-add counts 2; ``L = G0*G1*G2`` grid tokens, width ``d``, token hidden ``h_s``; the
pre-norms and GELU are not counted, as the softmax is not in the attention formulas of ``docs/mixers.md``):

- ``mlp_mixer`` (full grid): ``4 * L * h_s * d`` (two matmuls ``(d, L) x (L, h_s)`` and back);
- ``mlp_mixer_axes``: ``sum over the mixed axes a of 4 * L * h_a * d`` with ``h_a`` the hidden size along axis ``a``
  (each axis MLP runs on ``L / G_a`` sequences of length ``G_a``: ``2 * G_a * h_a * d`` per sequence and matmul).

Both are sized from the model's static grid (``layout.size``). On another grid the token weights are resampled
(:func:`resize_token_weights`): the rule that also inflates a 2D Mixer into a video or volume model.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .grid import Grid, GridLayout, check_grid, mean_to_prefix, split_prefix
from .mixer import TokenMixer
from .registry import register_mixer


def resize_token_weights(w1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, old: Grid,
                         new: Grid) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Token-MLP weights of grid ``old`` for grid ``new`` (1 to 3 axes; sizes of 1 are allowed).

    ``w1 (h, L)``, ``w2 (L, h)``, ``b2 (L,)`` over the tokens in row-major grid order. Each is viewed on the grid and
    resampled trilinearly (``align_corners=False``); ``w1`` is scaled by ``L / L'`` so that a token MLP fed the same
    value at every position computes the same hidden units. From a size of 1 the resampling repeats, so a 2D Mixer's
    weights give exactly its output on every frame of a static clip (or slice of an equal-slice volume).
    Other input sizes are approximate; fine-tune after resizing.
    """
    old, new = tuple(old), tuple(new)
    if old == new:
        return w1, w2, b2

    if len(old) != len(new) or not 1 <= len(old) <= 3:
        raise ValueError(f"token grids must have the same number (1 to 3) of axes, got {old} and {new}")
    mode = ("linear", "bilinear", "trilinear")[len(old) - 1]

    def resample(t: torch.Tensor) -> torch.Tensor:  # (C, L) -> (C, L')
        c = t.shape[0]
        grid = t.float().reshape(1, c, *old)
        return F.interpolate(grid, size=new, mode=mode, align_corners=False).reshape(c, -1).to(t.dtype)

    scale = math.prod(old) / math.prod(new)
    return resample(w1) * scale, resample(w2.t()).t(), resample(b2[None])[0]


def planar_grid(layout: GridLayout, n: int) -> Grid:
    """The 2D grid of ``n`` tokens in ``layout``'s axis order, with its time/depth axis (else axis 0) at 1:
    the layout's own plane when it holds ``n`` tokens, else a square ``sqrt(n) x sqrt(n)``."""
    axis = layout.slice_axis if layout.slice_axis is not None else 0
    plane = [s for i, s in enumerate(layout.size) if i != axis]
    if plane[0] * plane[1] != n:
        side = math.isqrt(n)
        if side * side != n:
            raise ValueError(f"a 2D token MLP over {n} tokens fits neither the plane {tuple(plane)} of the grid "
                             f"{layout.size} nor a square grid")
        plane = [side, side]
    return tuple(plane[:axis]) + (1,) + tuple(plane[axis:])


class TokenMLP(nn.Module):
    """``fc1 -> GELU -> fc2`` over the token axis: ``(B', S, C) -> (B', S, C)`` for sequences of ``seq_len`` tokens.

    ``forward(x, shape')`` resamples the weights when the sequence's grid ``shape'`` differs from ``shape``
    (:func:`resize_token_weights`).
    """

    def __init__(self, shape: Grid, hidden: int):
        super().__init__()
        self.shape = tuple(shape)
        seq_len = math.prod(self.shape)
        self.fc1 = nn.Linear(seq_len, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, seq_len)

    def forward(self, x: torch.Tensor, shape: Grid) -> torch.Tensor:
        w1, w2, b2 = resize_token_weights(self.fc1.weight, self.fc2.weight, self.fc2.bias, self.shape, shape)
        h = self.act(F.linear(x.transpose(1, 2), w1, self.fc1.bias))
        return F.linear(h, w2, b2).transpose(1, 2)


@register_mixer("mlp_mixer")
class MixerTokenMLP(TokenMixer):
    """MLP-Mixer token mixing: one MLP across all ``L = prod(layout.size)`` grid tokens, shared over channels.

    ``x + MLP_tok(LN(x)^T)^T`` (timm ``MixerBlock.mlp_tokens``); hidden ``int(token_ratio * dim)`` (the paper's
    D_S = dim / 2). ``num_heads`` and ``qkv_bias`` are not used. Prefix tokens take no part in the MLP and receive
    the mean of the grid tokens' update. Another grid resamples the weights (module docstring).
    ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``.
    """

    model_options = {"token_ratio": "token_ratio"}

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, token_ratio: float = 0.5):
        super().__init__()
        self.layout = layout
        self.norm = norm_layer(dim)
        self.mlp_tokens = TokenMLP(layout.size, int(token_ratio * dim))

    def inflate_state_dict(self, sd: dict[str, torch.Tensor], prefix: str) -> None:
        """A 2D Mixer's token MLP (``sd`` under ``prefix + "mlp_tokens."``) resampled to this grid: from the
        layout's grid with its time/depth axis at 1, or from a square grid when the 2D model had another size."""
        key = prefix + "mlp_tokens."
        if key + "fc1.weight" not in sd:
            return
        n = sd[key + "fc1.weight"].shape[1]
        if n == math.prod(self.mlp_tokens.shape):
            return
        src = planar_grid(self.layout, n)
        sd[key + "fc1.weight"], sd[key + "fc2.weight"], sd[key + "fc2.bias"] = resize_token_weights(
            sd[key + "fc1.weight"], sd[key + "fc2.weight"], sd[key + "fc2.bias"], src, self.mlp_tokens.shape)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        _, tokens = split_prefix(self.norm(x), num_prefix)
        return mean_to_prefix(self.mlp_tokens(tokens, grid), num_prefix)


@register_mixer("mlp_mixer_axes")
class AxesTokenMLP(TokenMixer):
    """Factorised MLP-Mixer token mixing: a token MLP along each grid axis in turn (T, then H, then W; or the
    volume's axes in order), each with its own pre-norm and residual, like divided attention.

    Axes of size 1 in ``layout.size`` (the padding axis of images) are skipped. Axis ``a`` has hidden size
    ``max(1, int(token_ratio * dim))``; its MLP has ``O(G_a * h)`` weights, so video and volume grids of any size
    stay small (the full-grid MLP has ``O(L * h)``). Prefix tokens receive the mean of the grid tokens' update.
    ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``.
    """

    model_options = {"token_ratio": "token_ratio"}

    def __init__(self, dim: int, *, num_heads: int, layout: GridLayout, qkv_bias: bool = True,
                 norm_layer=nn.LayerNorm, token_ratio: float = 0.5):
        super().__init__()
        self.axes = [a for a in range(3) if layout.size[a] > 1]
        if not self.axes:
            raise ValueError(f"mixer 'mlp_mixer_axes': the grid {layout.size} has no axis longer than 1")
        hidden = max(1, int(token_ratio * dim))
        self.norms = nn.ModuleList(norm_layer(dim) for _ in self.axes)
        self.mlps = nn.ModuleList(TokenMLP((layout.size[a],), hidden) for a in self.axes)

    def forward(self, x: torch.Tensor, grid: Grid, num_prefix: int = 0) -> torch.Tensor:
        check_grid(x, grid, num_prefix)
        _, tokens = split_prefix(x, num_prefix)
        b, _, c = tokens.shape
        y = tokens.reshape(b, *grid, c)
        for a, norm, mlp in zip(self.axes, self.norms, self.mlps):
            seq = y.movedim(a + 1, -2)  # (B, ..., G_a, C)
            lead = seq.shape[:-2]
            upd = mlp(norm(seq).reshape(-1, grid[a], c), (grid[a],)).reshape(*lead, grid[a], c)
            y = y + upd.movedim(-2, a + 1)
        return mean_to_prefix(y.reshape(b, -1, c) - tokens, num_prefix)
