"""Layer 2: models built from the token-mixer blocks, their registry, checkpoint loading and inflation."""

from .checkpoint_io import save_pretrained
from .pretrained import CheckpointFormatError, load_pretrained
from .registry import build_model, create_model, list_models, model_arch, model_entry
from .timesformer import TimeSformer, TimeSformerConfig
from .unetr import UNETR, UNETRConfig
from .vit import VisionTransformer, ViTConfig

__all__ = [
    "CheckpointFormatError", "TimeSformer", "TimeSformerConfig", "UNETR", "UNETRConfig", "ViTConfig",
    "VisionTransformer", "build_model", "create_model", "list_models", "load_pretrained", "model_arch",
    "model_entry", "save_pretrained",
]
