"""Resizing of learned position and time embeddings to a new grid.

2D uses timm's ``resample_abs_pos_embed``; timm has no 3D or 1D (time) version, so those two are ours.
``sinusoid_table`` is the fixed 1D table of VideoMAE / "Attention is all you need".
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.layers import resample_abs_pos_embed

_MODES_2D = {"nearest", "bilinear", "bicubic"}
_MODES_3D = {"nearest", "trilinear"}


def resize_pos_embed_2d(
    pe: torch.Tensor, old: tuple[int, int], new: tuple[int, int], num_prefix: int = 0, mode: str = "bicubic"
) -> torch.Tensor:
    """``(1, P + h*w, D) -> (1, P + h'*w', D)``; prefix slots are kept, the grid part is interpolated
    (bicubic with antialiasing, as timm; ``nearest`` reproduces the official TimeSformer)."""
    if tuple(old) == tuple(new):
        return pe
    if mode not in _MODES_2D:
        raise ValueError(f"2D position-embedding interpolation must be one of {sorted(_MODES_2D)}, got {mode!r}")
    align = None if mode == "nearest" else False
    return resample_abs_pos_embed(pe, list(new), list(old), num_prefix, interpolation=mode,
                                  antialias=mode == "bicubic", align_corners=align)


def resize_pos_embed_3d(
    pe: torch.Tensor, old: tuple[int, int, int], new: tuple[int, int, int], num_prefix: int = 0,
    mode: str = "trilinear",
) -> torch.Tensor:
    """``(1, P + a*b*c, D) -> (1, P + a'*b'*c', D)`` by 3D interpolation of the grid part."""
    if tuple(old) == tuple(new):
        return pe
    if mode not in _MODES_3D:
        raise ValueError(f"3D position-embedding interpolation must be one of {sorted(_MODES_3D)}, got {mode!r}")
    prefix, grid = pe[:, :num_prefix], pe[:, num_prefix:]
    d = grid.shape[-1]
    g = grid.reshape(1, *old, d).permute(0, 4, 1, 2, 3).float()
    kw = {} if mode == "nearest" else {"align_corners": False}
    g = F.interpolate(g, size=tuple(new), mode=mode, **kw).to(pe.dtype)
    return torch.cat([prefix, g.permute(0, 2, 3, 4, 1).reshape(1, -1, d)], dim=1)


def resize_time_embed(te: torch.Tensor, new_t: int, mode: str = "linear") -> torch.Tensor:
    """``(1, T, D) -> (1, T', D)``; ``nearest`` is the official TimeSformer's choice."""
    if te.shape[1] == new_t:
        return te
    if mode not in ("nearest", "linear"):
        raise ValueError(f"time-embedding interpolation must be 'nearest' or 'linear', got {mode!r}")
    kw = {} if mode == "nearest" else {"align_corners": False}
    return F.interpolate(te.transpose(1, 2).float(), size=new_t, mode=mode, **kw).transpose(1, 2).to(te.dtype)


def sinusoid_table(n: int, dim: int) -> torch.Tensor:
    """Fixed sinusoidal positions ``(1, n, dim)`` over the flattened token index (VideoMAE's table: angle
    ``pos / 10000^(2*(j//2)/dim)``, sine on even channels, cosine on odd ones), computed in float64."""
    pos = torch.arange(n, dtype=torch.float64)[:, None]
    j = torch.arange(dim, dtype=torch.float64)
    angle = pos / torch.pow(10000.0, 2 * torch.div(j, 2, rounding_mode="floor") / dim)
    table = torch.where(j.long() % 2 == 0, angle.sin(), angle.cos())
    return table.float()[None]
