"""The token-mixer contract (v2) that every mixer and feed-forward layer follows.

Construction is keyword-only and validated (no catch-all ``**kwargs``)::

    Mixer(dim, *, num_heads, layout, qkv_bias, norm_layer, <its own options>)
    FFN(dim, *, hidden_dim, layout, norm_layer, <its own options>)

``layout`` (:class:`~.grid.GridLayout`) is the model's grid: which axis is time or depth and the static grid
size. ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``: the mixer owns its pre-norm and
returns the update the block adds (through LayerScale and DropPath).

Hooks, with no-op defaults, so that a rule about one mixer lives in that mixer only:

- ``init_weights()``: runs after the model's generic initialisation (:func:`~.init.init_weights_`).
- ``inflate_state_dict(sd, prefix)``: fills this mixer's own keys in ``sd`` from the keys of a 2D joint-attention
  block (``prefix + "norm.*"``, ``prefix + "attn.*"``) when a 2D model initialises a video or volume model, or makes
  its own keys of a 2D model fit this grid (a token MLP resampled, a 2D kernel made (2+1)D or 3D).
- ``no_weight_decay()``: parameter names (relative to the mixer) that take no weight decay.
- ``attention_matrix(weights, grid, num_prefix)``: the token-to-token attention of one forward as full matrices
  ``[(B, P+N, P+N)]``, one per softmax step in the order the mixer applies them, from the weights that forward
  recorded (:func:`~.sdpa.record_attention`, in call order); None (the default) where the mixer has no
  token-to-token softmax attention. Attention maps (``spatio viz attention``) ask this hook only.
- ``inflates_from`` (class attribute): the 2D mixers whose weights this one starts from in inflation.
- ``from_model_config(enc, cfg, slot)`` (class method): the model's encoder config with this layer's own options
  taken from fields of the model config ``cfg`` that mean them (``model_options``: ``{option: config field}``),
  where ``<slot>_kwargs`` do not set them; e.g. ConvMixer's ``kernel_size`` and ``act``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

import torch
from torch import nn

from .grid import Grid

#: Arguments the model passes to every mixer; a mixer's own options must not reuse these names.
MIXER_CONTRACT = ("num_heads", "layout", "qkv_bias", "norm_layer")
FFN_CONTRACT = ("hidden_dim", "layout", "norm_layer")


class TokenMixer(nn.Module):
    """Base class of mixers and feed-forward layers; see the module docstring for the contract.

    Subclasses implement ``forward(x (B, P+N, C), grid, num_prefix) -> (B, P+N, C)``.
    """

    #: 2D mixers whose weights this mixer starts from (its ``inflate_state_dict`` hook): inflation keeps this mixer
    #: when the video / volume model asks for it and the 2D model has one of these (else the 2D model's mixer).
    inflates_from: ClassVar[tuple[str, ...]] = ()

    #: Options of this layer that a model config may hold under its own field names: ``{option: config field}``.
    model_options: ClassVar[dict[str, str]] = {}

    @classmethod
    def from_model_config(cls, enc, cfg, slot: str):
        """``enc`` (the model's encoder config) with ``enc.<slot>_kwargs`` completed from the fields of the model
        config ``cfg`` named in ``model_options`` (``slot``: ``"mixer"`` or ``"ffn"``); explicit kwargs win."""
        key = f"{slot}_kwargs"
        found = {opt: getattr(cfg, name) for opt, name in cls.model_options.items() if hasattr(cfg, name)}
        return replace(enc, **{key: {**found, **getattr(enc, key)}}) if found else enc

    def init_weights(self) -> None:
        """Called after the generic initialisation of the model's linear layers."""

    def inflate_state_dict(self, sd: dict[str, torch.Tensor], prefix: str) -> None:
        """Add this mixer's own keys to ``sd`` (a 2D joint-attention block's weights under ``prefix``), or fit its
        own 2D keys to this grid."""

    def no_weight_decay(self) -> set[str]:
        return set()

    def attention_matrix(self, weights: list[torch.Tensor], grid: Grid, num_prefix: int) -> list[torch.Tensor] | None:
        """``weights``: the softmax weights one forward recorded, in call order -> ``[(B, P+N, P+N)]`` per softmax
        step in the order applied, heads averaged; None: this mixer has no token-to-token attention."""
        return None
