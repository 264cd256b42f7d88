"""What every model declares: its modality, its input spec, its config, and its checkpoint hooks."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import torch
from torch import nn

from ..layers import no_weight_decay_names
from ..utils.errors import UserInputError
from .intermediates import Intermediate, block_intermediates, block_names, finish, resolve_names

MODALITIES = ("image", "video", "volume", "image_seg")


@dataclass(frozen=True)
class InputSpec:
    """The input a model takes: ``channels`` and ``size`` = ``(H, W)`` for images, ``(T, H, W)`` for videos,
    ``(H, W, D)`` for volumes (MONAI order); ``mean`` / ``std`` when the weights expect a normalisation."""

    channels: int
    size: tuple[int, ...]
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None


class SpatioModel(nn.Module):
    """Base of every model. Class-level facts:

    - ``arch``: the family name (``create_model`` names map to one arch; checkpoints store it);
    - ``modality``: ``"image" | "video" | "volume" | "image_seg"``: which pipeline trains, evaluates and predicts it;
    - ``config_cls``: the dataclass of its architecture;
    - ``head_key`` / ``head_prefix``: the config key of its output size and the state-dict prefix of the layer
      that a different output size replaces;
    - ``num_prefix``: the prefix (class) tokens ahead of the grid tokens in the sequences its encoder blocks see,
      ``(B, P+N, C)`` (0 by default; 1 for a model with a class token; 0 for XCiT, whose class token joins after
      the blocks).

    Instances have ``cfg``, ``input_spec()`` and ``config_dict()``; ``pretrained_cfg`` (the data / preprocessing
    and class names a checkpoint was trained with, or ``{}``) is set by ``load_pretrained``.
    """

    arch: ClassVar[str]
    modality: ClassVar[str]
    config_cls: ClassVar[type]
    head_key: ClassVar[str] = "num_classes"
    head_prefix: ClassVar[str] = "head."
    num_prefix: int = 0

    def __init__(self) -> None:
        super().__init__()
        self.pretrained_cfg: dict = {}

    def input_spec(self) -> InputSpec:  # pragma: no cover - every model overrides it
        raise TypeError(f"{type(self).__name__} does not declare its input spec")

    @classmethod
    def input_config(cls, size: tuple[int, ...], num_outputs: int) -> dict:
        """Config values that make the model take inputs of ``size`` (as in :class:`InputSpec`) and give
        ``num_outputs`` outputs (classes or segmentation channels): how a pipeline fits a model to its data
        without knowing the model's config names. Default: ``img_size`` (square for images and video frames,
        the whole ``(H, W, D)`` for volumes), ``num_frames`` for videos, and ``head_key``."""
        if cls.modality == "volume":
            return {"img_size": tuple(size), cls.head_key: num_outputs}
        if size[-1] != size[-2]:
            raise UserInputError(f"{cls.__name__} takes square inputs, got {size[-2]}x{size[-1]}")
        out = {"img_size": size[-1], cls.head_key: num_outputs}
        return {"num_frames": size[0], **out} if cls.modality == "video" else out

    def config_dict(self) -> dict:
        return asdict(self.cfg)

    def no_weight_decay(self) -> set[str]:
        """Embeddings of the model (``own_no_weight_decay``) plus what its mixers ask for (XCA temperature)."""
        return set(self.own_no_weight_decay) | no_weight_decay_names(self)

    own_no_weight_decay: ClassVar[tuple[str, ...]] = ()

    def resize_state_dict(self, sd: dict[str, torch.Tensor], src_cfg: dict, name: str) -> None:
        """Resize the checkpoint's embeddings (grid of ``src_cfg``) to this model's grid, in place."""

    def intermediate_names(self) -> list[str]:
        """The levels :meth:`forward_intermediates` gives, in order: ``blocks.{i}`` for a model with one stack of
        encoder blocks (the default); hierarchies override it with ``stage{i}``."""
        return block_names(self)

    def inner_intermediate_names(self) -> list[str]:
        """Levels inside :meth:`intermediate_names` that :meth:`forward_intermediates` gives when named (a
        hierarchy's ``stage{i}.{j}`` blocks); none by default."""
        return []

    def intermediates(self, x: torch.Tensor, names: list[str]) -> list[Intermediate]:
        """The family hook behind :meth:`forward_intermediates`: the named levels of input ``x``, in order.
        Default: the outputs of the encoder blocks (``models.intermediates.block_intermediates``)."""
        return block_intermediates(self, x, names)

    def forward_intermediates(self, x: torch.Tensor, indices=None, output_fmt: str = "NLC") -> list[Intermediate]:
        """Each level's grid tokens ``(B, N, C)``, grid and prefix tokens (before any final norm), as timm's
        ``forward_intermediates``. ``indices``: None (all levels), an int ``n`` (the last ``n``), or names /
        positions of :meth:`intermediate_names` (or names of :meth:`inner_intermediate_names`); ``output_fmt``:
        ``"NLC"`` or the modality's map layout (``"NCHW"``, ``"NCTHW"``, ``"NCHWD"``: each item's ``map``)."""
        names = self.intermediate_names()
        if not names:
            raise UserInputError(f"{type(self).__name__} has no intermediate levels (no encoder blocks or stages)")
        chosen = resolve_names(names, indices, self.inner_intermediate_names())
        return finish(self.intermediates(x, chosen) if chosen else [], self.modality, output_fmt)


class PooledImageClassifier(SpatioModel):
    """An image model whose ``forward_tokens(x) -> (tokens (B, N, D), grid (1, H', W'), 0)`` is mean-pooled into
    a linear ``head`` (MLP-Mixer, ConvMixer)."""

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> pooled embedding (B, D)``."""
        return self.forward_tokens(x)[0].mean(1)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, H, W) -> last feature map (B, D, 1, H', W')``."""
        tokens, grid, _ = self.forward_tokens(x)
        return tokens.transpose(1, 2).reshape(x.shape[0], -1, *grid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.forward_features(x))
