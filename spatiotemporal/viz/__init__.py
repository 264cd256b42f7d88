"""Visualisations of learned features: t-SNE of clip / image / crop embeddings, effective receptive fields and
gradient-based saliency (input x gradient, Grad-CAM).

Layer 3 (beside ``data`` and ``engine``): uses ``models``, never ``engine``, the pipelines or ``cli``; the
samples come from a modality's pipeline as :class:`VizSamples`.
"""

from .embed import extract_embeddings
from .erf import THRESHOLDS, area_ratios, compute_erf, erf_metrics, erf_single, normalize_erf, support_extent
from .models import VizModel, load_viz_model, mixer_label, parse_model_spec
from .plots import plot_erf, plot_tsne
from .report import erf_report, tsne_report
from .saliency import METHODS as SALIENCY_METHODS
from .saliency import gradcam, input_x_gradient, saliency_map
from .samples import VizSamples, crop_centered, evenly_spaced
from .tsne import knn_loo_accuracy, pca_reduce, run_tsne, separability, silhouette

__all__ = [
    "SALIENCY_METHODS", "THRESHOLDS", "VizModel", "VizSamples", "area_ratios", "compute_erf", "crop_centered",
    "erf_metrics",
    "erf_report", "erf_single", "evenly_spaced", "extract_embeddings", "gradcam", "input_x_gradient",
    "knn_loo_accuracy", "load_viz_model",
    "mixer_label", "normalize_erf", "parse_model_spec", "pca_reduce", "plot_erf",
    "plot_tsne", "run_tsne", "saliency_map", "separability", "silhouette", "support_extent", "tsne_report",
]
