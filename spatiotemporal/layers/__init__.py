"""Layer 1: token mixers and blocks that work on any token grid (images, videos, volumes).

Importing this package registers every mixer and FFN (each registers itself in its own file).
"""

from .attention import JointAttention, MultiHeadAttention, SpaceOnlyAttention
from .block import Block
from .divided import DividedAttention
from .ffn import MixFFN, Mlp
from .grid import Grid, GridLayout, image_layout, video_layout, volume_layout
from .init import init_weights_, no_weight_decay_names
from .mixer import TokenMixer
from .multiscale_block import MultiScaleBlock
from .patch_embed import PatchEmbed2d, PatchEmbed3d, patch_grid
from .pooling_attention import PoolingAttention
from .pos_embed import resize_pos_embed_2d, resize_pos_embed_3d, resize_time_embed, sinusoid_table
from .registry import FFNS, MIXERS, build_ffn, build_mixer, list_mixers, register_ffn, register_mixer
from .sdpa import attend, record_attention
from .sra import SRAttention
from .stage import (
    MultiStageEncoder,
    OverlapPatchEmbed,
    PooledSkip,
    Stage,
    StageOutput,
    pixels_to_tokens,
    stage_layout,
    strided_grid,
)
from .xca import LPI, XCA, XCAttention

__all__ = [
    "Block", "DividedAttention", "FFNS", "Grid", "GridLayout", "JointAttention", "LPI", "MIXERS", "MixFFN", "Mlp",
    "MultiHeadAttention", "MultiStageEncoder", "OverlapPatchEmbed", "PatchEmbed2d", "PatchEmbed3d", "SRAttention",
    "SpaceOnlyAttention", "Stage", "StageOutput", "TokenMixer", "XCA", "XCAttention", "attend", "build_ffn",
    "build_mixer", "image_layout", "init_weights_", "list_mixers", "no_weight_decay_names", "pixels_to_tokens",
    "register_ffn", "register_mixer", "resize_pos_embed_2d", "resize_pos_embed_3d", "resize_time_embed",
    "stage_layout", "video_layout", "volume_layout", "sinusoid_table", "record_attention",
    "MultiScaleBlock", "PooledSkip", "PoolingAttention", "strided_grid",
]
__all__ += ["patch_grid"]

# MLP-Mixer and ConvMixer token mixing (issue 15)
from .convmixer import ConvMixerMixer, ConvMixerPointwise, TokenBatchNorm  # noqa: E402
from .token_mlp import AxesTokenMLP, MixerTokenMLP, TokenMLP, resize_token_weights  # noqa: E402

__all__ += ["AxesTokenMLP", "ConvMixerMixer", "ConvMixerPointwise", "MixerTokenMLP", "TokenBatchNorm", "TokenMLP",
            "resize_token_weights"]
