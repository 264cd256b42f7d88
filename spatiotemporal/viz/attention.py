"""Attention rollout (Abnar & Zuidema 2020) over any mixer that gives its token attention, as the TimeSformer
authors draw it (TimeSformer #40, #57): heads averaged, half identity added for the residual, rows renormalised,
the block matrices multiplied from the input to the output.

Each block's mixer writes the softmax weights of its forward as full token-to-token matrices, one per softmax step
(``TokenMixer.attention_matrix``; divided attention: temporal, then spatial), and the block's matrix is their
product with the residual added to each: ``A_block = S_hat @ T_hat``. The weights come from
``layers.record_attention`` (SDPA does not return them), only inside this module.
"""

from __future__ import annotations

import torch
from torch import nn

from ..layers import MIXERS, TokenMixer, record_attention
from ..utils.errors import UserInputError


def _residual(a: torch.Tensor) -> torch.Tensor:
    """``0.5 A + 0.5 I``, rows renormalised (the rollout's residual). ``a (B, L, L)``."""
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    a = 0.5 * a + 0.5 * eye
    return a / a.sum(-1, keepdim=True)


def _rollout_mixers() -> list[str]:
    """The registered mixers that give their token attention (they implement ``attention_matrix``)."""
    return sorted(name for name, cls in MIXERS.items() if cls.attention_matrix is not TokenMixer.attention_matrix)


def _record_mixers(blocks: nn.ModuleList, store: list[torch.Tensor], calls: list[list]) -> list:
    """Hooks on every block's mixer that append ``[grid, num_prefix, weights]`` of each of its forwards to
    ``calls[i]`` (the weights it added to ``store``)."""
    hooks = []
    for i, blk in enumerate(blocks):
        def before(mod, args, kwargs, i=i):
            grid = kwargs.get("grid", args[1] if len(args) > 1 else None)
            num_prefix = kwargs.get("num_prefix", args[2] if len(args) > 2 else 0)
            calls[i].append([grid, num_prefix, len(store)])

        def after(mod, args, kwargs, out, i=i):
            calls[i][-1][2] = store[calls[i][-1][2]:]

        hooks.append(blk.mixer.register_forward_pre_hook(before, with_kwargs=True))
        hooks.append(blk.mixer.register_forward_hook(after, with_kwargs=True))
    return hooks


def block_matrices(model: nn.Module, x: torch.Tensor) -> tuple[list[torch.Tensor], tuple, int, torch.Tensor]:
    """Run ``model.forward_tokens(x)`` recording the attention weights; returns the per-block rollout matrices
    ``[(B', P+N, P+N)]`` (``B' = B*T`` for framewise models: one sequence per frame), the grid, the number of
    prefix tokens and the tokens. Each block's mixer turns its own weights into token-to-token matrices
    (``TokenMixer.attention_matrix``); the block's matrix is their product, each with the residual added."""
    blocks = getattr(getattr(model, "encoder", None), "blocks", None)
    if blocks is None or not hasattr(model, "forward_tokens"):
        raise UserInputError(f"{type(model).__name__} has no single stack of encoder blocks whose attention can be "
                             "rolled out (a multi-stage model); attention rollout takes a model with one stack of "
                             f"blocks whose mixers give their attention ({', '.join(_rollout_mixers())})")
    calls: list[list] = [[] for _ in blocks]
    with record_attention() as store:
        hooks = _record_mixers(blocks, store, calls)
        try:
            tokens, grid, p = model.forward_tokens(x)
        finally:
            for h in hooks:
                h.remove()
    mats = []
    for i, (blk, (mixer_grid, num_prefix, weights)) in enumerate(zip(blocks, (c[-1] for c in calls))):
        steps = blk.mixer.attention_matrix(weights, mixer_grid, num_prefix)
        if steps is None:
            raise UserInputError(f"block {i}: mixer {type(blk.mixer).__name__} has no token-to-token softmax "
                                 f"attention to roll out (it gives no attention_matrix; these do: "
                                 f"{', '.join(_rollout_mixers())})")
        m = _residual(steps[0])
        for step in steps[1:]:
            m = _residual(step) @ m
        mats.append(m)
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
