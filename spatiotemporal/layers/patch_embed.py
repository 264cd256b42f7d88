"""Patch embeddings: frame-wise 2D (images, videos) and 3D (volumes).

Both are ViT's non-overlapping ``Conv(k=p, s=p)`` by default; ``stride`` and ``padding`` make them MViT's
overlapping convolutional embedding (e.g. ``Conv3d(k=(3, 7, 7), s=(2, 4, 4), p=(1, 3, 3))``), which takes any size.
"""

from __future__ import annotations

import torch
from timm.layers import to_2tuple, to_3tuple
from torch import nn

from .grid import Grid


def patch_grid(img_size, patch_size) -> tuple[int, ...]:
    """The token grid of an input of ``img_size`` cut into ``patch_size`` patches (ints or per-axis tuples of one
    length); a size that is not a multiple of the patch is a ``ValueError``: its border would be dropped, and
    the model could not take inputs of that size."""
    sizes = tuple(img_size) if isinstance(img_size, (tuple, list)) else (int(img_size),) * 2
    patches = tuple(patch_size) if isinstance(patch_size, (tuple, list)) else (int(patch_size),) * len(sizes)
    if any(int(s) % p for s, p in zip(sizes, patches)):
        raise ValueError(f"img_size {img_size} is not a multiple of patch_size {patch_size}")
    return tuple(int(s) // p for s, p in zip(sizes, patches))


class PatchEmbed2d(nn.Module):
    """``Conv2d(k=p, s=p)`` per image or per frame.

    ``(B, C, H, W) -> tokens (B, H'W', D), grid (1, H', W')``;
    ``(B, C, T, H, W) -> tokens (B, T*H'W', D), grid (T, H', W')`` (time-major order).
    """

    def __init__(self, patch_size=16, in_chans: int = 3, embed_dim: int = 768, bias: bool = True, stride=None,
                 padding=0):
        super().__init__()
        self.patch_size = tuple(to_2tuple(patch_size))
        self.overlapping = stride is not None and tuple(to_2tuple(stride)) != self.patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=stride or self.patch_size,
                              padding=padding, bias=bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        if x.ndim == 4:
            x = x.unsqueeze(2)
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, H, W) or (B, C, T, H, W), got shape {tuple(x.shape)}")
        b, c, t, h, w = x.shape
        ph, pw = self.patch_size
        if not self.overlapping and (h % ph or w % pw):
            raise ValueError(f"input size {h}x{w} is not divisible by the patch size {ph}x{pw}")
        y = self.proj(x.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, D, H', W')
        gh, gw = y.shape[-2:]
        y = y.flatten(2).transpose(1, 2).reshape(b, t * gh * gw, -1)
        return y, (t, gh, gw)


class PatchEmbed3d(nn.Module):
    """``Conv3d(k=p, s=p)`` on volumes: ``(B, C, S0, S1, S2) -> tokens (B, N, D), grid (S0/p0, S1/p1, S2/p2)``.

    Tokens are in row-major order over the input's own axis order (MONAI's (H, W, D): D fastest).
    """

    def __init__(self, patch_size=16, in_chans: int = 1, embed_dim: int = 768, bias: bool = True, stride=None,
                 padding=0):
        super().__init__()
        self.patch_size = tuple(to_3tuple(patch_size))
        self.overlapping = stride is not None and tuple(to_3tuple(stride)) != self.patch_size
        self.proj = nn.Conv3d(in_chans, embed_dim, kernel_size=self.patch_size, stride=stride or self.patch_size,
                              padding=padding, bias=bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, Grid]:
        if x.ndim != 5:
            raise ValueError(f"expected (B, C, S0, S1, S2), got shape {tuple(x.shape)}")
        for s, p in zip(x.shape[2:], self.patch_size):
            if not self.overlapping and s % p:
                raise ValueError(
                    f"input size {tuple(x.shape[2:])} is not divisible by the patch size {self.patch_size}"
                )
        y = self.proj(x)
        grid = tuple(y.shape[2:])
        return y.flatten(2).transpose(1, 2), grid
