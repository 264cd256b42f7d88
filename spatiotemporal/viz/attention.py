"""Attention rollout (Abnar & Zuidema 2020) for joint, divided and space-only attention, as the TimeSformer authors
draw it (TimeSformer #40, #57): heads averaged, half identity added for the residual, rows renormalised, the
block matrices multiplied from the input to the output.

Divided attention: each block's temporal attention (tokens at one spatial position, along time) and spatial
attention (tokens of one frame + the class token, whose outputs are averaged over frames) are written as full
token-to-token matrices and combined per block, temporal first: ``A_block = S_hat @ T_hat``. The weights come
from ``layers.record_attention`` (SDPA does not return them), only inside this module.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import DividedAttention, JointAttention, MultiHeadAttention, SpaceOnlyAttention, record_attention
from ..utils.errors import UserInputError


def _residual(a: torch.Tensor) -> torch.Tensor:
    """``0.5 A + 0.5 I``, rows renormalised (the rollout's residual). ``a (B, L, L)``."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    a = 0.5 * a + 0.5 * eye
    return a / a.sum(-1, keepdim=True)


def _axis_order(grid, axis: int) -> torch.Tensor:
    """Token indices (row-major over ``grid``) listed axis-major: position ``k`` of the axis-major order holds the
    token ``order[k]``."""
    idx = torch.arange(grid[0] * grid[1] * grid[2]).reshape(grid)
    return idx.movedim(axis, 0).reshape(-1)


def _with_prefix(m: torch.Tensor, p: int) -> torch.Tensor:
    """Grid matrix ``(B, N, N)`` -> ``(B, P+N, P+N)`` with the prefix tokens untouched (identity)."""
    if not p:
        return m
    b, n, _ = m.shape
    out = torch.zeros(b, p + n, p + n, dtype=m.dtype, device=m.device)
    out[:, :p, :p] = torch.eye(p, dtype=m.dtype, device=m.device)
    out[:, p:, p:] = m
    return out


def temporal_matrix(probs: torch.Tensor, b: int, grid, axis: int, p: int) -> torch.Tensor:
    """Attention along ``axis`` ``(B*R, heads, G, G)`` (sequences in ``group_along`` order) -> ``(B, P+N, P+N)``."""
    g = grid[axis]
    r = grid[0] * grid[1] * grid[2] // g
    a = probs.mean(1).reshape(b, r, g, g)
    eye = torch.eye(r, dtype=a.dtype, device=a.device)
    full = torch.einsum("brtu,rs->btrus", a, eye).reshape(b, g * r, g * r)  # axis-major order
    order = _axis_order(grid, axis).to(a.device)
    m = torch.zeros_like(full)
    m[:, order[:, None], order[None, :]] = full
    return _with_prefix(m, p)


def slice_matrix(probs: torch.Tensor, b: int, grid, axis: int, p: int) -> torch.Tensor:
    """Attention within each slice orthogonal to ``axis`` ``(B*G, heads, P+S, P+S)`` (``group_across`` order; the
    prefix tokens take part in every slice and their outputs are averaged over the slices) -> ``(B, P+N, P+N)``."""
    g = grid[axis]
    a = probs.mean(1).reshape(b, g, probs.shape[-2], probs.shape[-1])
    s = a.shape[-1] - p
    n = g * s
    full = torch.zeros(b, p + n, p + n, dtype=a.dtype, device=a.device)
    order = _axis_order(grid, axis).to(a.device)
    for t in range(g):
        cols = p + order[t * s:(t + 1) * s]
        full[:, cols[:, None], cols[None, :]] = a[:, t, p:, p:]
        if p:
            full[:, cols, :p] = a[:, t, p:, :p]
            full[:, :p, cols] = a[:, t, :p, p:] / g
            full[:, :p, :p] += a[:, t, :p, :p] / g
    return full


def block_matrices(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], tuple, int, torch.Tensor]:
    """Run ``model.forward_tokens(x)`` recording the attention weights; returns the per-block rollout matrices
    ``[(B', P+N, P+N)]`` (``B' = B*T`` for framewise models: one sequence per frame), the grid, the number of
    prefix tokens and the tokens."""
    blocks = getattr(getattr(model, "encoder", None), "blocks", None)
    if blocks is None or not hasattr(model, "forward_tokens"):
        raise UserInputError(f"{type(model).__name__} has no single stack of encoder blocks whose attention can be "
                             "rolled out (a multi-stage model); attention rollout takes models with joint, divided or "
                             "space_only mixers (vit, timesformer, videomae, unetr)")
    records: dict[str, torch.Tensor] = {}
    hooks = []
    with record_attention() as store:
        for name, mod in model.named_modules():
            if isinstance(mod, MultiHeadAttention):
                hooks.append(mod.register_forward_hook(
                    lambda m, i, o, name=name: records.__setitem__(name, store[-1])))
        try:
            tokens, grid, p = model.forward_tokens(x)
        finally:
            for h in hooks:
                h.remove()
    b = x.shape[0]
    mats = []
    for i, blk in enumerate(blocks):
        mixer, pre = blk.mixer, f"encoder.blocks.{i}.mixer."
        if isinstance(mixer, DividedAttention):
            t_m = temporal_matrix(records[pre + "temporal_attn"], b, grid, mixer.axis, p)
            s_m = slice_matrix(records[pre + "attn"], b, grid, mixer.axis, p)
            mats.append(_residual(s_m) @ _residual(t_m))
        elif isinstance(mixer, SpaceOnlyAttention):
            mats.append(_residual(slice_matrix(records[pre + "attn"], b, grid, mixer.axis, p)))
        elif isinstance(mixer, JointAttention):
            mats.append(_residual(records[pre + "attn"].mean(1)))
        else:
            raise UserInputError(f"block {i}: mixer {type(mixer).__name__} has no token-to-token softmax attention to "
                                 "roll out (joint, divided and space_only have)")
    return mats, grid, p, tokens


@torch.no_grad()
def attention_rollout(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x (B, C, ...)`` -> rollout map over the model's token grid ``(B, G0, G1, G2)``, each map summing to 1.

    With a class token: the class token's row of the rolled-out matrix (framewise models: each frame's class token,
    averaged as the model averages them). Without (VideoMAE's mean pooling, UNETR): the mean of all rows, the
    attention of the pooled output.
    """
    mats, grid, p, _ = block_matrices(model, x)
    roll = mats[0]
    for m in mats[1:]:
        roll = m @ roll
    b = x.shape[0]
    if roll.shape[0] != b:  # framewise: (B*T, P+S, P+S), one sequence per frame
        per = roll.shape[0] // b
        rows = roll[:, 0, p:] if p else roll.mean(1)[:, p:]
        out = rows.reshape(b, per, -1) / per
    else:
        out = roll[:, 0, p:] if p else roll.mean(1)
    out = out.reshape(b, *grid)
    return out / out.flatten(1).sum(1).view(b, 1, 1, 1)


def upsample_map(roll: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    """A grid map ``(G0, G1, G2)`` -> the input's spatial shape: ``(T, H, W)`` videos, ``(1, H, W)`` images,
    ``(H, W, D)`` volumes (trilinear)."""
    return torch.nn.functional.interpolate(roll[None, None].float(), size=tuple(shape), mode="trilinear",
                                           align_corners=False)[0, 0]


def panels(x: torch.Tensor, heat: torch.Tensor, kind: str, max_panels: int = 16) -> tuple[list, list, list[str]]:
    """Frames (videos), the image, or evenly spaced depth slices (volumes) of ``x`` with the map beside them:
    ``([gray or RGB (H, W[, 3]) in [0, 1]], [map (H, W)], [titles])``."""
    x = x.float()
    if kind == "volume":  # (1, H, W, D), map (H, W, D): slices along D
        d = x.shape[-1]
        idx = sorted({int(round(v)) for v in torch.linspace(0, d - 1, min(max_panels, d)).tolist()})
        imgs = [x[0, :, :, i] for i in idx]
        maps = [heat[:, :, i] for i in idx]
        titles = [f"slice {i}" for i in idx]
    else:  # (3, T, H, W) or (3, H, W)
        frames = x.unsqueeze(1) if x.ndim == 3 else x
        imgs = [frames[:, t].permute(1, 2, 0) for t in range(frames.shape[1])][:max_panels]
        maps = list(heat)[:max_panels]
        titles = [f"frame {t}" for t in range(len(imgs))] if x.ndim == 4 else ["image"]
    lo, hi = min(float(i.min()) for i in imgs), max(float(i.max()) for i in imgs)
    imgs = [((i - lo) / max(hi - lo, 1e-8)).clamp(0, 1).numpy() for i in imgs]
    return imgs, [m.numpy() for m in maps], titles
