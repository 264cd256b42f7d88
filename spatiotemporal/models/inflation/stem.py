"""What a single-stage 2D model hands to the video or volume model it initialises: :class:`Stem2d`, and the kernel
and position helpers the targets use to adopt it.

A source family returns a :class:`Stem2d` from its ``inflation_source()`` hook; a target family builds its config
from it (``stem_config(stem)``, class method) and its state dict (``adopt_stem(stem, depth_mode=...)``); the
mixers' ``inflate_state_dict`` hooks then fit each block to the new grid (:mod:`.generic`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ...utils.errors import UserInputError
from ..encoder import EncoderConfig

#: ``positions(grid (h, w), mode) -> (1, h*w, D)``: the 2D model's position embedding of the grid tokens on a grid
#: of another size (resized with ``mode``, or computed there, e.g. XCiT's Fourier encoding).
Positions = Callable[[tuple[int, int], str], torch.Tensor]


@dataclass
class Stem2d:
    """The parts of a 2D model around its encoder, in a form every target reads.

    - ``encoder`` / ``encoder_state``: the block design and the encoder's tensors (names relative to ``encoder.``,
      copied key for key);
    - ``patch_weight`` ``(D, C, p, p)`` / ``patch_bias`` ``(D,)``: the patch convolution, or ``None`` when the stem
      is more than one convolution (XCiT's convolutional stem): the target's patch embedding then starts fresh;
    - ``positions``: see :data:`Positions`; ``None`` when the model has none (the target's start at zero);
    - ``cls_token`` / ``cls_pos`` ``(1, 1, D)``: the class token and its position slot (``None``: none, or no slot);
    - ``pool``: ``"token" | "avg" | "map"``, or ``"none"`` when no target can hold the 2D model's pooling (XCiT's
      class-attention layers): the target pools by GAP and its head starts fresh;
    - ``norm_position``: the final LayerNorm (``norm``, ``{"weight", "bias"}``) is applied to the tokens
      ``"before"`` pooling, to the pooled vector ``"after"`` it (timm's ``fc_norm``), or there is ``"none"``;
    - ``pool_state``: the MAP head's tensors (relative to ``pool.``); ``head``: the classifier's ``weight``/``bias``;
    - ``dropped``: parts of the 2D model no target holds (named in inflation's WARNING line).
    """

    arch: str
    encoder: EncoderConfig
    encoder_state: dict[str, torch.Tensor]
    img_size: int
    in_chans: int
    num_classes: int
    patch_size: int
    patch_weight: torch.Tensor | None = None
    patch_bias: torch.Tensor | None = None
    positions: Positions | None = None
    cls_token: torch.Tensor | None = None
    cls_pos: torch.Tensor | None = None
    pool: str = "avg"
    norm_position: str = "before"
    norm: dict[str, torch.Tensor] = field(default_factory=dict)
    pool_state: dict[str, torch.Tensor] = field(default_factory=dict)
    head: dict[str, torch.Tensor] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()

    def grid_positions(self, grid: tuple[int, int], mode: str, dim: int) -> torch.Tensor:
        """``(1, h*w, D)``: the 2D positions on ``grid``, or zeros when the model has none."""
        if self.positions is None:
            return torch.zeros(1, grid[0] * grid[1], dim)
        return self.positions(grid, mode).detach().clone()


def sub_state(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The tensors of ``sd`` under ``prefix``, with the prefix removed (detached copies)."""
    return {k[len(prefix):]: v.detach().clone() for k, v in sd.items() if k.startswith(prefix)}


def with_prefix(prefix: str, part: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {prefix + k: v for k, v in part.items()}


def inflate_patch_kernel(w2d: torch.Tensor, in_channels: int, depth: int, mode: str = "average") -> torch.Tensor:
    """2D patch kernel ``(D, 3, p, p)`` -> 3D ``(D, C, p, p, depth)`` (depth = last axis, MONAI order).

    RGB filters are summed for one channel, or repeated and scaled by 3/C for C channels; the
    kernel is spread over depth either averaged (``average``) or on the centre slice (``center``),
    so a volume whose slices are all equal gives the 2D model's embedding of one slice.
    """
    if mode not in ("average", "center"):
        raise UserInputError(f"depth mode must be 'average' or 'center', got {mode!r}")
    gray = w2d.sum(1, keepdim=True)
    w = gray if in_channels == 1 else gray.repeat(1, in_channels, 1, 1) / in_channels
    if in_channels == w2d.shape[1]:
        w = w2d
    if mode == "average":
        return w.unsqueeze(-1).repeat(1, 1, 1, 1, depth) / depth
    out = w.new_zeros(*w.shape, depth)
    out[..., depth // 2] = w
    return out


def head_if_fits(stem: Stem2d, num_classes: int) -> dict[str, torch.Tensor]:
    """``head.*`` tensors of the 2D classifier when the class counts agree and its pooling is carried, else ``{}``
    (the target's head keeps its own init)."""
    if stem.pool == "none" or not stem.head or stem.head["weight"].shape[0] != num_classes:
        return {}
    return with_prefix("head.", stem.head)
