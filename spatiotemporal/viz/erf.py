"""Effective receptive field (ERF), RepLKNet's method (DingXiaoH/RepLKNet-pytorch ``erf/``), for any grid.

For each input ``x (1, C, *S)``: ``y = model.feature_map(x)`` ``(1, D, *G)`` (or, with ``stage``, the map of that
name: a level of ``model.forward_intermediates(x)``, ``blocks.{i}`` of a flat model or ``stage{i}`` of a
hierarchy, or a segmenter's decoder ``head`` from ``model.feature_maps(x)``);
``central = relu(y[:, :, g_c]).sum()``
over all channels at the centre location ``g_c = G // 2`` of the last feature map; ``grad = d central / d x``;
``relu(grad)`` summed over batch and channels gives a map over the input grid ``S``: ``(H, W)`` images,
``(T, H, W)`` videos, ``(H, W, D)`` volumes. Maps with NaNs are skipped; the rest are averaged. The mean map is
then shown and measured as ``log10(map + 1) / max``.

High-contribution area ratio (RepLKNet ``analyze_erf.py``): grow a centred square / cube of side ``2i + 1``
until it holds more than a fraction ``t`` of the total; report the side and the area (volume) ratio. Unlike
RepLKNet we start at side 1 and grow until the box covers the whole map, so it never fails: when ``t`` is not
reached (``t >= 1`` or an all-zero map) the ratio is 1.0 and ``reached`` is False.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..utils.errors import UserInputError

THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def feature_map_names(model: nn.Module, x: torch.Tensor) -> list[str]:
    """The maps an ERF can be taken at: ``model.intermediate_names()`` (``blocks.{i}`` of a flat model,
    ``stage{i}`` of a hierarchy), then any other map a model's ``feature_maps(x)`` names (a segmenter's decoder
    ``head``); an error if the model has neither."""
    names = list(model.intermediate_names()) if callable(getattr(model, "intermediate_names", None)) else []
    if callable(getattr(model, "feature_maps", None)):
        with torch.no_grad():
            names += [n for n in model.feature_maps(x) if n not in names]
    if not names:
        raise UserInputError(f"{type(model).__name__} has no intermediate feature maps (no encoder blocks or "
                             "stages); it has only the last one (drop --stage)")
    return names


def stage_map(model: nn.Module, x: torch.Tensor, stage: str) -> torch.Tensor:
    """The map named ``stage`` ``(B, C, G0, G1, G2)``: a level of ``model.forward_intermediates`` (a hierarchy's
    ``stage{i}.{j}`` blocks included), or another
    map of ``model.feature_maps`` (a decoder ``head``)."""
    if stage in model.intermediate_names() or stage in model.inner_intermediate_names():
        return model.forward_intermediates(x, indices=[stage])[0].feature_map()
    return model.feature_maps(x)[stage]


def erf_single(model: nn.Module, x: torch.Tensor, stage: str | None = None) -> np.ndarray:
    """Gradient map of one batch ``x (B, C, *S)``: ``relu(d central / d x)`` summed over B and C -> ``S``; the
    centre of ``model.feature_map(x)``, or of the map named ``stage`` (:func:`stage_map`)."""
    x = x.detach().clone().requires_grad_(True)
    y = model.feature_map(x) if stage is None else stage_map(model, x, stage)
    centre = tuple(s // 2 for s in y.shape[2:])
    central = torch.relu(y[(slice(None), slice(None)) + centre]).sum()
    (grad,) = torch.autograd.grad(central, x)
    return torch.relu(grad).sum(dim=(0, 1)).double().cpu().numpy()


def compute_erf(model: nn.Module, inputs: Iterable[torch.Tensor], device: str | torch.device = "cpu",
                total: int | None = None, desc: str = "ERF", progress: bool = True,
                stage: str | None = None) -> tuple[np.ndarray, int]:
    """Mean ERF map over inputs ``(C, *S)`` (batch 1 each, as RepLKNet): ``(map S float64, maps used)``; ``stage``
    names one of :func:`feature_map_names` (default: ``model.feature_map``)."""
    model.eval()
    acc: np.ndarray | None = None
    used = 0
    with tqdm(total=total, desc=desc, unit="input", disable=not progress, leave=False) as bar:
        for x in inputs:
            m = erf_single(model, x[None].to(device, torch.float32), stage)
            bar.update(1)
            if np.isnan(m).any():
                continue
            acc = m if acc is None else acc + m
            used += 1
    if acc is None:
        raise UserInputError("no usable ERF map: no inputs, or every gradient map had NaNs")
    return acc / used, used


def normalize_erf(erf: np.ndarray) -> np.ndarray:
    """``log10(erf + 1)`` scaled to max 1 (all-zero maps stay zero)."""
    out = np.log10(np.asarray(erf, dtype=np.float64) + 1.0)
    peak = out.max()
    return out / peak if peak > 0 else out


def _box(shape: Sequence[int], i: int) -> tuple[slice, ...]:
    return tuple(slice(max(0, s // 2 - i), min(s, s // 2 + i + 1)) for s in shape)


def area_ratios(m: np.ndarray, thresholds: Sequence[float] = THRESHOLDS) -> list[dict]:
    """For each ``t``: the smallest centred box of side ``2i+1`` (clipped to the map) holding more than ``t``
    of the total. ``[{"threshold", "side", "area_ratio", "reached"}]``; works for 1D/2D/3D maps."""
    m = np.asarray(m, dtype=np.float64)
    total = float(m.sum())
    full = max(m.shape)
    out = []
    for t in thresholds:
        row = {"threshold": float(t), "side": int(full), "area_ratio": 1.0, "reached": False}
        if total > 0:
            for i in range(full // 2 + 1):
                box = _box(m.shape, i)
                if float(m[box].sum()) > (t + 1e-9) * total:  # tolerance: partial sums round differently
                    size = np.prod([sl.stop - sl.start for sl in box])
                    row.update(side=min(2 * i + 1, full), area_ratio=float(size / m.size), reached=True)
                    break
        out.append(row)
    return out


def support_extent(m: np.ndarray, tol: float = 0.0) -> list[int]:
    """Per axis, the length of the span of indices where the map is above ``tol`` (0 for an empty map)."""
    m = np.asarray(m)
    ext = []
    for ax in range(m.ndim):
        other = tuple(a for a in range(m.ndim) if a != ax)
        nz = np.nonzero(m.max(axis=other) > tol if other else m > tol)[0]
        ext.append(int(nz[-1] - nz[0] + 1) if len(nz) else 0)
    return ext


def erf_metrics(erf: np.ndarray, kind: str, thresholds: Sequence[float] = THRESHOLDS) -> dict:
    """Numbers of a mean ERF map, all on ``normalize_erf(erf)``.

    - image ``(H, W)``: ``area_ratios`` (squares).
    - video ``(T, H, W)``: ``area_ratios`` of the time-summed map (squares, pixels), ``temporal_ratios``
      (centred frame windows) and ``frame_mass`` (fraction of the map in each frame, sums to 1).
    - volume ``(H, W, D)``: ``area_ratios`` (cubes).
    """
    n = normalize_erf(erf)
    out: dict = {"shape": list(n.shape), "support": support_extent(erf)}
    if kind == "video":
        out["area_ratios"] = area_ratios(n.sum(0), thresholds)
        out["temporal_ratios"] = area_ratios(n.sum((1, 2)), thresholds)
        mass = n.sum((1, 2))
        out["frame_mass"] = [float(v) for v in (mass / mass.sum() if mass.sum() > 0 else mass)]
    else:
        out["area_ratios"] = area_ratios(n, thresholds)
    return out
