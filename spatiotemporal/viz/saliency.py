"""Gradient-based saliency for any model: input x gradient and Grad-CAM on a named feature map.

The score of one input ``x (1, C, *S)``:

- classifiers (logits ``(1, K)``): the logit of the target class (``pred``: the predicted class, ``label``: the
  sample's label, or a class index);
- segmenters (logits ``(1, K, *S)``): the sum of the target class's logits over the voxels predicted as that class
  (``pred``/``label``: the most frequent predicted class other than 0, the background; or a class index).

Maps are over the input grid ``S``: images ``(H, W)``, videos ``(T, H, W)``, volumes ``(H, W, D)``.

- ``input_x_gradient``: ``|x * d score / d x|`` summed over input channels.
- ``gradcam`` (Selvaraju et al.): ``A = `` the named feature map ``(1, D, *G)`` (``model.feature_maps(x)[stage]``,
  or ``model.feature_map(x)``); weights ``w_d = mean_G d score / d A_d``; ``relu(sum_d w_d A_d)`` upsampled to ``S``
  (trilinear). ``A`` is taken from the forward pass that gives the score: a forward hook records every submodule's
  output and the last one that equals the named map (as a map, or as tokens with leading prefix tokens) is used.
"""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..utils.errors import UserInputError

log = logging.getLogger("spatiotemporal.viz")

METHODS = ("input_x_gradient", "gradcam")


def _target_class(logits: torch.Tensor, target: str | int, label: int) -> int:
    """The class index the score is about (see the module docstring)."""
    if isinstance(target, int) or str(target).lstrip("-").isdigit():
        k = int(target)
        if not 0 <= k < logits.shape[1]:
            raise UserInputError(f"--target {k}: the model has classes 0..{logits.shape[1] - 1}")
        return k
    if target not in ("pred", "label"):
        raise UserInputError(f"--target must be pred, label or a class index, got {target!r}")
    if logits.ndim == 2:
        return int(logits.argmax(1)[0]) if target == "pred" else int(label)
    counts = torch.bincount(logits.argmax(1).flatten(), minlength=logits.shape[1])
    counts[0] = 0
    return int(counts.argmax()) if int(counts.sum()) > 0 else 0


def score_of(logits: torch.Tensor, target: str | int, label: int = -1) -> tuple[torch.Tensor, int]:
    """``(scalar score, class)`` of one input's logits ``(1, K)`` or ``(1, K, *S)``."""
    k = _target_class(logits.detach(), target, label)
    if logits.ndim == 2:
        return logits[0, k], k
    region = logits.detach().argmax(1)[0] == k
    if not bool(region.any()):
        log.warning("class %d is predicted nowhere: the score is the sum of its logits over the whole input", k)
        region = torch.ones_like(region)
    return (logits[0, k] * region).sum(), k


def input_x_gradient(model: nn.Module, x: torch.Tensor, target: str | int = "pred",
                     label: int = -1) -> tuple[np.ndarray, int]:
    """``x (1, C, *S)`` -> ``(|x * d score / d x| summed over C: S, class)``."""
    x = x.detach().clone().requires_grad_(True)
    score, k = score_of(model(x), target, label)
    (grad,) = torch.autograd.grad(score, x)
    return (x.detach() * grad).abs().sum(dim=(0, 1)).double().cpu().numpy(), k


def _reference_map(model: nn.Module, x: torch.Tensor, stage: str | None) -> torch.Tensor:
    """The named feature map ``(1, D, *G)`` of ``x``, without gradients."""
    with torch.no_grad():
        if stage is None:
            return model.feature_map(x)
        if not callable(getattr(model, "feature_maps", None)):
            raise UserInputError(f"{type(model).__name__} has no per-stage feature maps (feature_maps); it has "
                                 "only the last one (drop --stage)")
        maps = model.feature_maps(x)
        if stage not in maps:
            raise UserInputError(f"--stage {stage}: this model's feature maps are {', '.join(maps)}")
        return maps[stage]


def _view(t: torch.Tensor, shape: torch.Size) -> torch.Tensor | None:
    """``t`` as a map of ``shape`` ``(1, D, *G)``: a map of that shape (unit axes aside: images' ``(1, D, h, w)``),
    or tokens ``(1, P+N, D)`` whose last ``N = prod(G)`` are the map's locations; None if it is neither."""
    if t.shape[:2] == shape[:2] and [s for s in t.shape[2:] if s != 1] == [s for s in shape[2:] if s != 1]:
        return t.reshape(shape)
    n = int(np.prod(shape[2:]))
    if t.ndim == 3 and t.shape[0] == shape[0] and t.shape[2] == shape[1] and t.shape[1] >= n:
        return t[:, t.shape[1] - n:].transpose(1, 2).reshape(shape)
    return None


def _as_map(t: torch.Tensor, ref: torch.Tensor) -> torch.Tensor | None:
    """``_view(t)`` if it holds ``ref``'s values, else None."""
    m = _view(t, ref.shape)
    if m is None or not torch.allclose(m.detach().float(), ref.float(), rtol=1e-4, atol=1e-5):
        return None
    return m


def _tensors(out) -> list[torch.Tensor]:
    """The tensors a module returned (a tensor, a tuple/list of them, or objects with ``tokens``)."""
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _tensors(o)]
    tok = getattr(out, "tokens", None)
    return [tok] if isinstance(tok, torch.Tensor) else []


def gradcam(model: nn.Module, x: torch.Tensor, stage: str | None = None, target: str | int = "pred",
            label: int = -1) -> tuple[np.ndarray, int]:
    """``x (1, C, *S)`` -> ``(Grad-CAM map on S, class)`` of the map ``stage`` (see the module docstring)."""
    ref = _reference_map(model, x, stage)
    seen: list[torch.Tensor] = []

    def hook(_module, _inputs, out):
        seen.extend(t for t in _tensors(out) if t.requires_grad)

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        logits = model(x.detach().clone().requires_grad_(True))
    finally:
        for h in handles:
            h.remove()
    score, k = score_of(logits, target, label)
    found = next(((t, m) for t in reversed(seen) if (m := _as_map(t, ref)) is not None), None)
    if found is None:
        raise UserInputError(f"--stage {stage or '(last feature map)'}: no submodule's output in the forward pass "
                             "equals this feature map, so its gradient is not defined; use --method "
                             "input_x_gradient or another --stage")
    (grad,) = torch.autograd.grad(score, found[0], allow_unused=True)
    if grad is None:
        raise UserInputError(f"--stage {stage or '(last feature map)'}: the score does not depend on this map")
    amap = found[1].detach()
    gmap = _view(grad, ref.shape)
    if not bool(gmap.any()):
        log.warning("--stage %s: the score's gradient is zero on every location of this map (the head reads "
                    "only prefix tokens there), so Grad-CAM is zero; pick an earlier --stage or input_x_gradient",
                    stage or "(last feature map)")
    weights = gmap.mean(dim=tuple(range(2, gmap.ndim)), keepdim=True)
    cam = torch.relu((weights * amap).sum(1, keepdim=True)).float()
    size = x.shape[2:]
    if cam.ndim == 5 and len(size) == 2:  # images: maps carry a unit axis (1, h, w)
        cam = cam[:, :, 0]
    mode = "bilinear" if len(size) == 2 else "trilinear"
    up = F.interpolate(cam, size=tuple(size), mode=mode, align_corners=False)
    return up[0, 0].double().cpu().numpy(), k


def saliency_map(model: nn.Module, x: torch.Tensor, method: str = "input_x_gradient", stage: str | None = None,
                 target: str | int = "pred", label: int = -1) -> tuple[np.ndarray, int]:
    """One input ``x (1, C, *S)``: ``(map S, class)`` by ``method`` (one of :data:`METHODS`)."""
    if method == "input_x_gradient":
        if stage is not None:
            raise UserInputError("--stage belongs to --method gradcam")
        return input_x_gradient(model, x, target, label)
    if method == "gradcam":
        return gradcam(model, x, stage, target, label)
    raise UserInputError(f"--method must be one of {', '.join(METHODS)}, got {method!r}")


def mass_along(m: np.ndarray, kind: str) -> list[float] | None:
    """Fraction of the map in each frame (videos, axis 0) or depth slice (volumes, last axis); None for images."""
    if kind == "image" or m.ndim < 3:
        return None
    axis = 0 if kind == "video" else m.ndim - 1
    mass = m.sum(axis=tuple(a for a in range(m.ndim) if a != axis))
    total = mass.sum()
    return [round(float(v), 4) for v in (mass / total if total > 0 else mass)]
