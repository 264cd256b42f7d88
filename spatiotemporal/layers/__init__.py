"""Layer 1: token mixers and blocks that work on any token grid (images, videos, volumes)."""

from .attention import JointAttention, MultiHeadAttention, SpaceOnlyAttention
from .block import Block
from .divided import DividedAttention
from .ffn import MixFFN, Mlp
from .grid import Grid
from .patch_embed import PatchEmbed2d, PatchEmbed3d
from .pos_embed import resize_pos_embed_2d, resize_pos_embed_3d, resize_time_embed
from .registry import FFNS, MIXERS, build_ffn, build_mixer, list_mixers
from .sdpa import attend
from .sra import SRAttention
from .xca import LPI, XCA, XCAttention

__all__ = [
    "Block", "DividedAttention", "FFNS", "Grid", "JointAttention", "LPI", "MIXERS", "MixFFN", "Mlp",
    "MultiHeadAttention", "PatchEmbed2d", "PatchEmbed3d", "SRAttention", "SpaceOnlyAttention", "XCA",
    "XCAttention", "attend", "build_ffn", "build_mixer", "list_mixers", "resize_pos_embed_2d",
    "resize_pos_embed_3d", "resize_time_embed",
]
