"""Recorded softmax weights of one attention call -> the full token-to-token matrix ``(B, P+N, P+N)`` it applies,
for the attention mixers' ``attention_matrix`` hook (attention maps: ``spatio viz attention``).

Tokens are in the model's order: ``P`` prefix tokens, then the grid ``(G0, G1, G2)`` row-major. An attention that
runs on groups of tokens (along one axis, or within the slices orthogonal to it) is block-sparse in that order.
"""

from __future__ import annotations

import torch

from .grid import Grid


def axis_order(grid: Grid, axis: int) -> torch.Tensor:
    """Token indices (row-major over ``grid``) listed axis-major: position ``k`` of the axis-major order holds the
    token ``order[k]``. ``(N,)``."""
    idx = torch.arange(grid[0] * grid[1] * grid[2]).reshape(grid)
    return idx.movedim(axis, 0).reshape(-1)


def with_prefix(m: torch.Tensor, num_prefix: int) -> torch.Tensor:
    """Grid matrix ``(B, N, N)`` -> ``(B, P+N, P+N)`` with the prefix tokens untouched (identity)."""
    if not num_prefix:
        return m
    b, n, _ = m.shape
    p = num_prefix
    out = torch.zeros(b, p + n, p + n, dtype=m.dtype, device=m.device)
    out[:, :p, :p] = torch.eye(p, dtype=m.dtype, device=m.device)
    out[:, p:, p:] = m
    return out


def along_axis_matrix(probs: torch.Tensor, grid: Grid, axis: int, num_prefix: int) -> torch.Tensor:
    """Attention along ``axis`` (grid tokens only; ``group_along`` order) ``(B*R, heads, G, G)`` with
    ``R = N / G`` -> heads averaged ``(B, P+N, P+N)``."""
    g = grid[axis]
    r = grid[0] * grid[1] * grid[2] // g
    a = probs.mean(1).reshape(-1, r, g, g)
    b = a.shape[0]
    eye = torch.eye(r, dtype=a.dtype, device=a.device)
    full = torch.einsum("brtu,rs->btrus", a, eye).reshape(b, g * r, g * r)  # axis-major order
    order = axis_order(grid, axis).to(a.device)
    m = torch.zeros_like(full)
    m[:, order[:, None], order[None, :]] = full
    return with_prefix(m, num_prefix)


def slice_matrix(probs: torch.Tensor, grid: Grid, axis: int, num_prefix: int) -> torch.Tensor:
    """Attention within each slice orthogonal to ``axis`` ``(B*G, heads, P+S, P+S)`` (``group_across`` order; the
    prefix tokens take part in every slice and their outputs are averaged over the slices) -> heads averaged
    ``(B, P+N, P+N)``."""
    p, g = num_prefix, grid[axis]
    a = probs.mean(1).reshape(-1, g, probs.shape[-2], probs.shape[-1])
    b, s = a.shape[0], a.shape[-1] - p
    n = g * s
    full = torch.zeros(b, p + n, p + n, dtype=a.dtype, device=a.device)
    order = axis_order(grid, axis).to(a.device)
    for t in range(g):
        cols = p + order[t * s:(t + 1) * s]
        full[:, cols[:, None], cols[None, :]] = a[:, t, p:, p:]
        if p:
            full[:, cols, :p] = a[:, t, p:, :p]
            full[:, :p, cols] = a[:, t, :p, p:] / g
            full[:, :p, :p] += a[:, t, :p, :p] / g
    return full
