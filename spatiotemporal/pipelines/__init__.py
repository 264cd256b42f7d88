"""Layer 4: one pipeline per modality (image, video, volume), owning recipe, datasets, loss, metrics,
evaluation, prediction and visualisation samples. ``pipeline_for`` resolves it from a model, a model
name or a recipe; the CLI calls nothing else.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..engine import read_yaml
from ..models import arch_class
from ..utils.errors import UnknownNameError, UserInputError
from .base import ModelSection, Pipeline, class_names_of
from .image import ImagePipeline, ImageRecipe
from .image_seg import ImageSegPipeline, ImageSegRecipe
from .recipes import config_dir, default_recipe, family_of, find_config, known_recipes
from .video import VideoPipeline, VideoRecipe
from .volume import VolumePipeline, VolumeRecipe

PIPELINES: dict[str, Pipeline] = {p.modality: p for p in (ImagePipeline(), VideoPipeline(), VolumePipeline(),
                                                          ImageSegPipeline())}


def get_pipeline(modality: str) -> Pipeline:
    if modality not in PIPELINES:
        raise UnknownNameError(f"no pipeline for modality {modality!r}; known: {', '.join(sorted(PIPELINES))}")
    return PIPELINES[modality]


def pipeline_for(obj: nn.Module | str) -> Pipeline:
    """The pipeline of a model (instance), a family or registered model name."""
    if isinstance(obj, nn.Module):
        return get_pipeline(type(obj).modality)
    return get_pipeline(arch_class(family_of(obj)).modality)


def pipeline_for_recipe(path: str | Path) -> Pipeline:
    """The pipeline of a recipe file, from the family of its ``model.name``."""
    file = find_config(path)
    data = read_yaml(file) or {}
    model = data.get("model") if isinstance(data, dict) else None
    name = model.get("name") if isinstance(model, dict) else None
    if not name:
        raise UserInputError(f"{file}: the recipe names no model (expected a model.name key)")
    return pipeline_for(name)


def pipeline_for_input(path: str | Path) -> Pipeline | None:
    """The pipeline whose input files look like ``path`` (by suffix), or None."""
    for p in PIPELINES.values():
        if p.accepts(path):
            return p
    return None


__all__ = [
    "ImagePipeline", "ImageRecipe", "ImageSegPipeline", "ImageSegRecipe",
    "ModelSection", "PIPELINES", "Pipeline", "VideoPipeline", "VideoRecipe",
    "VolumePipeline", "VolumeRecipe", "class_names_of", "config_dir", "default_recipe", "family_of", "find_config",
    "get_pipeline", "known_recipes", "pipeline_for", "pipeline_for_input", "pipeline_for_recipe",
]
