"""Multi-level features with one contract for flat and hierarchical models (timm's ``forward_intermediates``).

:class:`Intermediate`: one named level of a model: ``name`` (``"blocks.3"`` for a model with one stack of blocks,
``"stage2"`` for a hierarchy), its grid tokens ``tokens (B, N, C)`` on ``grid (G0, G1, G2)`` (``N = G0*G1*G2``;
images ``(1, H', W')``), the prefix (class) tokens ``prefix (B, P, C)`` apart, and, when asked for with an
``output_fmt`` other than ``"NLC"``, ``map (B, C, *spatial)`` in the modality's axis order.

:func:`block_intermediates` is the default of :meth:`SpatioModel.forward_intermediates` (the outputs of the
encoder blocks of a flat model, before the final norm); :func:`stage_intermediates` turns a hierarchy's
per-stage outputs (:class:`~spatiotemporal.layers.stage.StageOutput`) into the same items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from ..layers.grid import tokens_to_map
from ..utils.errors import UserInputError

#: The map layouts of ``output_fmt`` by modality (volumes keep MONAI's ``(H, W, D)`` order); ``"NLC"``: tokens only.
MAP_FORMATS = {"image": "NCHW", "image_seg": "NCHW", "video": "NCTHW", "volume": "NCHWD"}


@dataclass
class Intermediate:
    """One level: ``tokens (B, N, C)`` on ``grid``, ``prefix (B, P, C)``, ``map (B, C, *spatial)`` or None."""

    name: str
    tokens: torch.Tensor
    grid: tuple[int, int, int]
    prefix: torch.Tensor
    map: torch.Tensor | None = None

    def feature_map(self) -> torch.Tensor:
        """``(B, C, G0, G1, G2)`` of the grid tokens (images keep their unit axis)."""
        return tokens_to_map(self.tokens, self.grid)


def resolve_names(names: Sequence[str], indices=None, inner: Sequence[str] = ()) -> list[str]:
    """``indices`` (None: all; an int ``n``: the last ``n``; a list of names or of positions, negative from the
    end) -> names in ``names`` (or, named, in ``inner``: a hierarchy's ``stage{i}.{j}`` blocks); an unknown one is
    a :class:`UserInputError` listing the valid names."""
    if indices is None:
        return list(names)
    if isinstance(indices, int):
        return list(names[-indices:]) if indices > 0 else []
    out = []
    for i in indices:
        if isinstance(i, int) and -len(names) <= i < len(names):
            out.append(names[i])
        elif isinstance(i, str) and (i in names or i in inner):
            out.append(i)
        else:
            raise UserInputError(f"{i!r}: not a level of this model; expected one of {', '.join(names)} (or a "
                                 f"position 0..{len(names) - 1}, negative from the end"
                                 f"{', or stage.block such as ' + inner[0] if inner else ''})")
    return out


def finish(items: list[Intermediate], modality: str, output_fmt: str) -> list[Intermediate]:
    """Check ``output_fmt`` and add each item's ``map`` in the modality's layout (images lose the unit axis)."""
    fmt = MAP_FORMATS.get(modality)
    if output_fmt == "NLC":
        return items
    if output_fmt != fmt:
        raise ValueError(f"output_fmt must be 'NLC' or {fmt!r} for a {modality} model, got {output_fmt!r}")
    for it in items:
        m = it.feature_map()
        it.map = m[:, :, 0] if fmt == "NCHW" else m
    return items


def block_names(model: nn.Module) -> list[str]:
    """``["blocks.0", ...]`` of ``model.encoder.blocks``; ``[]`` for a model without one stack of blocks."""
    blocks = getattr(getattr(model, "encoder", None), "blocks", None)
    if blocks is None or not hasattr(model, "forward_tokens"):
        return []
    return [f"blocks.{i}" for i in range(len(blocks))]


def block_intermediates(model: nn.Module, x: torch.Tensor, names: Sequence[str]) -> list[Intermediate]:
    """The outputs of the named blocks of ``model.encoder.blocks`` (captured while ``model.forward_tokens(x)``
    runs). A framewise model's blocks see ``(B*k, P+N, C)``: its frames join into ``(B, k*N, C)`` on the model's
    grid and its prefix tokens are averaged over the frames, as its ``forward_tokens`` does."""
    blocks = model.encoder.blocks
    captured: dict[str, torch.Tensor] = {}
    hooks = [blocks[int(n.split(".")[1])].register_forward_hook(
        lambda m, i, o, n=n: captured.__setitem__(n, o)) for n in names]
    try:
        _, grid, _ = model.forward_tokens(x)
    finally:
        for h in hooks:
            h.remove()
    p = model.num_prefix  # the prefix the blocks see (XCiT's class token joins after them)
    out = []
    for n in names:
        t = captured[n].reshape(x.shape[0], -1, *captured[n].shape[1:])  # (B, k, P+N, C)
        out.append(Intermediate(n, t[:, :, p:].flatten(1, 2), tuple(grid), t[:, :, :p].mean(1)))
    return out


def stage_block_names(encoder: nn.Module) -> list[str]:
    """``["stage1.0", ...]``: every block of every stage of a ``MultiStageEncoder``."""
    return [f"stage{i + 1}.{j}" for i, st in enumerate(encoder.stages) for j in range(len(st.blocks))]


def stage_intermediates(encoder: nn.Module, run, names: Sequence[str], num_prefix: int) -> list[Intermediate]:
    """The named stages (``stage{i}``: a ``StageOutput`` of ``run()``) or blocks inside them (``stage{i}.{j}``:
    captured while ``run()`` runs; a grid-changing block returns its grid, the others keep the one they get) of a
    ``MultiStageEncoder``. ``run``: a callable returning the encoder's per-stage outputs."""
    captured: dict[str, tuple[torch.Tensor, tuple]] = {}

    def keep(name):
        return lambda m, args, out: captured.__setitem__(name, out if isinstance(out, tuple) else (out, args[1]))

    hooks = []
    for n in names:
        if "." in n:
            i, j = n[len("stage"):].split(".")
            hooks.append(encoder.stages[int(i) - 1].blocks[int(j)].register_forward_hook(keep(n)))
    try:
        outs = run()
    finally:
        for h in hooks:
            h.remove()
    for i, o in enumerate(outs):
        captured[f"stage{i + 1}"] = (o.tokens, o.grid)
    p = num_prefix
    return [Intermediate(n, captured[n][0][:, p:], tuple(captured[n][1]), captured[n][0][:, :p]) for n in names]
