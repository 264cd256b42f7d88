"""Layer 2: models built from the token-mixer blocks, their registry, checkpoint loading and inflation.

Each model file registers its family (``@register_arch``) and named variants (``@register_model``); importing
this package imports them all.
"""

from . import convmixer, mlp_mixer, timesformer, unetr, vit, xcit  # noqa: F401  (register the model families)
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
from .encoder import BlockStack, EncoderConfig
from .inflate import init_from_checkpoint, register_inflation
from .pretrained import CheckpointInfo, inspect_checkpoint, load_pretrained
from .timesformer import TimeSformer, TimeSformerConfig
from .unetr import UNETR, UNETRConfig
from .vit import VisionTransformer, ViTConfig

__all__ = [
    "ARCHS", "BlockStack", "CheckpointFormatError", "CheckpointInfo", "EncoderConfig", "InputSpec", "SpatioModel",
    "TimeSformer", "TimeSformerConfig", "UNETR", "UNETRConfig", "ViTConfig", "VisionTransformer", "arch_class",
    "build_model", "create_model", "init_from_checkpoint", "inspect_checkpoint", "list_archs", "list_models",
    "load_pretrained", "model_arch", "model_entry", "model_spec", "register_arch", "register_converter",
    "register_inflation", "register_model", "save_pretrained",
]

from . import inflate_families  # noqa: E402,F401  (inflation rules of the MLP-Mixer, ConvMixer and XCiT)
from .convmixer import ConvMixer, ConvMixerConfig  # noqa: E402
from .mlp_mixer import MlpMixer, MlpMixerConfig  # noqa: E402
from .xcit import XCiT, XCiTConfig  # noqa: E402

__all__ += ["ConvMixer", "ConvMixerConfig", "MlpMixer", "MlpMixerConfig", "XCiT", "XCiTConfig"]
