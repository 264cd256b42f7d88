"""One registry of token mixers and feed-forward layers, picked by name."""

from __future__ import annotations

from torch import nn

from .attention import JointAttention, SpaceOnlyAttention
from .divided import DividedAttention
from .ffn import MixFFN, Mlp
from .sra import SRAttention
from .xca import XCAttention

MIXERS: dict[str, type[nn.Module]] = {
    "joint": JointAttention,
    "divided": DividedAttention,
    "space_only": SpaceOnlyAttention,
    "xca": XCAttention,
    "sra": SRAttention,
}

FFNS: dict[str, type[nn.Module]] = {"mlp": Mlp, "mixffn": MixFFN}


def _lookup(table: dict, name: str, what: str):
    if name not in table:
        raise KeyError(f"unknown {what} {name!r}; registered: {', '.join(sorted(table))}")
    return table[name]


def build_mixer(name: str, dim: int, num_heads: int, qkv_bias: bool = True, norm_layer=nn.LayerNorm, **kwargs):
    """A mixer module by name; ``forward(x (B, P+N, C), grid, num_prefix) -> update (B, P+N, C)``."""
    return _lookup(MIXERS, name, "mixer")(dim, num_heads, qkv_bias=qkv_bias, norm_layer=norm_layer, **kwargs)


def build_ffn(name: str, dim: int, hidden_dim: int, norm_layer=nn.LayerNorm, **kwargs):
    """A feed-forward layer by name; same call signature as the mixers."""
    return _lookup(FFNS, name, "ffn")(dim, hidden_dim, norm_layer=norm_layer, **kwargs)


def list_mixers() -> list[str]:
    return sorted(MIXERS)
