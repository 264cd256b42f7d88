"""Layer 2: models built from the token-mixer blocks, their registry, checkpoint loading and inflation.

Each model file registers its family (``@register_arch``) and named variants (``@register_model``); importing
this package imports them all.
"""

# register the model families and the inflation rules of the multi-stage trunks (SegFormer hierarchy, MViT)
from . import (  # noqa: F401
    convmixer,
    mit,
    mlp_mixer,
    mvit,
    mvit_unetr,
    segformer,
    timesformer,
    unetr,
    videomae,
    vit,
    xcit,
)
from ._registry import (
    ARCHS,
    arch_class,
    build_model,
    create_model,
    list_archs,
    list_models,
    model_arch,
    model_entry,
    register_arch,
    register_model,
)
from .base import InputSpec, SpatioModel
from .checkpoint_io import model_spec, save_pretrained
from .convert import CheckpointFormatError, register_converter
from .encoder import BlockStack, EncoderConfig, encoder_of, with_encoder
from .inflation import mvit as _mvit_rules  # noqa: F401
from .inflation import segformer as _segformer_rules  # noqa: F401
from .inflation.rules import (
    INFLATIONS,
    inflate,
    inflate_vit_to_timesformer,
    inflate_vit_to_unetr,
    init_from_checkpoint,
    register_inflation,
)
from .inflation.stem import Stem2d, inflate_patch_kernel
from .mit import MiTConfig, MiTEncoderConfig, MixVisionTransformer
from .mvit import MViT, MViTConfig, MViTImage, MViTImageConfig
from .mvit_unetr import MViTUNETR, MViTUNETRConfig
from .pretrained import CheckpointInfo, inspect_checkpoint, load_pretrained
from .segformer import SegFormer, SegFormer3D, SegFormer3DConfig, SegFormerConfig
from .timesformer import TimeSformer, TimeSformerConfig
from .unetr import UNETR, UNETR2D, UNETR2DConfig, UNETRConfig
from .videomae import VideoMAE, VideoMAEConfig, VideoMAEPretrainer
from .vit import VisionTransformer, ViTConfig

__all__ = [
    "ARCHS", "BlockStack", "CheckpointFormatError", "CheckpointInfo", "EncoderConfig", "InputSpec", "SpatioModel",
    "TimeSformer", "TimeSformerConfig", "UNETR", "UNETRConfig", "ViTConfig", "VisionTransformer", "arch_class",
    "build_model", "create_model", "init_from_checkpoint", "inspect_checkpoint", "list_archs", "list_models",
    "load_pretrained", "model_arch", "model_entry", "model_spec", "register_arch", "register_converter",
    "register_inflation", "register_model", "save_pretrained",
    "INFLATIONS", "Stem2d", "encoder_of", "inflate", "inflate_patch_kernel", "inflate_vit_to_timesformer",
    "inflate_vit_to_unetr", "with_encoder",
    "MiTConfig", "MiTEncoderConfig", "MixVisionTransformer", "SegFormer", "SegFormer3D", "SegFormer3DConfig",
    "SegFormerConfig", "UNETR2D", "UNETR2DConfig", "VideoMAE", "VideoMAEConfig", "VideoMAEPretrainer",
    "MViT", "MViTConfig", "MViTImage", "MViTImageConfig", "MViTUNETR", "MViTUNETRConfig",
]

from .convmixer import ConvMixer, ConvMixerConfig  # noqa: E402
from .mlp_mixer import MlpMixer, MlpMixerConfig  # noqa: E402
from .xcit import XCiT, XCiTConfig  # noqa: E402

__all__ += ["ConvMixer", "ConvMixerConfig", "MlpMixer", "MlpMixerConfig", "XCiT", "XCiTConfig"]
