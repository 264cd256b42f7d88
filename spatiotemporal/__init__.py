"""spatiotemporal: token mixers, ViT / TimeSformer / UNETR models and their training pipelines."""

from .models import create_model, list_models, load_pretrained, save_pretrained

__version__ = "0.1.0"
__all__ = ["create_model", "list_models", "load_pretrained", "save_pretrained", "__version__"]
