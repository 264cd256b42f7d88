"""Convolutions applied on the token grid: 2D per slice (along the time or depth axis) or 3D on the whole grid."""

from __future__ import annotations

import torch
from monai.networks.layers import Norm
from torch import nn

from .grid import Grid, GridLayout, map_to_tokens, slices_to_tokens, tokens_to_map, tokens_to_slices


class _SmallInputFp32:
    """Computes in fp32 under CPU autocast when a spatial extent of the input is below the kernel's.

    Own code because oneDNN 3.12 (torch 2.14) bf16 convolution backward-weights is broken there: wrong,
    run-to-run varying weight grads (up to 1e37 from stale memory) and crashes (benchmarks/bf16_conv_check.py).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
                and any(s < k for s, k in zip(x.shape[2:], self.kernel_size))):
            with torch.autocast("cpu", enabled=False):
                return super().forward(x.float())
        return super().forward(x)


class GridConv2d(_SmallInputFp32, nn.Conv2d):
    """``nn.Conv2d`` (same parameters); fp32 under CPU autocast on inputs smaller than the kernel."""


class GridConv3d(_SmallInputFp32, nn.Conv3d):
    """``nn.Conv3d`` (same parameters); fp32 under CPU autocast on inputs smaller than the kernel."""


def conv_nd(ndim: int) -> type[nn.Module]:
    """:class:`GridConv2d` or :class:`GridConv3d`."""
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim}")
    return GridConv2d if ndim == 2 else GridConv3d


def batchnorm_nd(ndim: int) -> type[nn.Module]:
    """``nn.BatchNorm2d`` or ``nn.BatchNorm3d`` (MONAI's ``Norm`` factory)."""
    return Norm[Norm.BATCH, ndim]


def default_ndim(layout: GridLayout, ndim: int | None) -> int:
    """The conv dimensionality a grid mixer uses: 3 on volumes, 2 (per frame) on images and videos."""
    if ndim is None:
        return 3 if layout.is_volume else 2
    if ndim not in (2, 3):
        raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
    return ndim


def slice_axis(layout: GridLayout) -> int:
    """The axis 2D convolutions slice along: time or depth, else the padding axis of images (0)."""
    axis = layout.slice_axis
    return 0 if axis is None else axis


def apply_on_grid(fn: nn.Module, x: torch.Tensor, grid: Grid, ndim: int, axis: int = 0) -> torch.Tensor:
    """Run a spatial module on grid tokens ``(B, N, C)``; 2D runs per slice along ``axis``.

    ``fn`` maps ``(B', C, *spatial) -> (B', C', *spatial')``; returns tokens ``(B, N', C')``.
    """
    if ndim == 2:
        return slices_to_tokens(fn(tokens_to_slices(x, grid, axis)), grid, axis)
    return map_to_tokens(fn(tokens_to_map(x, grid)))


def centre_slice_kernel(w2d: torch.Tensor, axis: int) -> torch.Tensor:
    """A 2D kernel ``(O, I, k, k)`` as a 3D one ``(O, I, k, k, k)`` that is zero except on the centre slice of grid
    ``axis``: on a grid whose slices along ``axis`` are all equal it gives the 2D convolution of each slice."""
    k = w2d.shape[-1]
    w3d = w2d.new_zeros(*w2d.shape[:2], k, k, k)
    index = [slice(None)] * 5
    index[2 + axis] = k // 2
    w3d[tuple(index)] = w2d
    return w3d
