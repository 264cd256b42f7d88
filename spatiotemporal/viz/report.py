"""End-to-end t-SNE and ERF reports: run the models on shared samples, write PNG + ``.npz`` + ``.json``."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from ..utils.errors import UserInputError
from .embed import extract_embeddings
from .erf import THRESHOLDS, compute_erf, erf_metrics
from .models import VizModel
from .plots import plot_erf, plot_tsne
from .samples import VizSamples
from .tsne import pca_reduce, run_tsne, separability


def sidecar_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """``(png, npz, json)`` paths: ``out`` and the same stem with ``.npz`` / ``.json``."""
    out = Path(out)
    if out.suffix.lower() != ".png":
        raise UserInputError(f"--out must be a .png file, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out, out.with_suffix(".npz"), out.with_suffix(".json")


def check_same_kind(models: Sequence[VizModel]) -> str:
    """The common input kind of all models (an error naming the odd one out otherwise)."""
    kinds = {vm.label: type(vm.model).modality for vm in models}
    if len(set(kinds.values())) != 1:
        raise UserInputError(f"all models of one figure must take the same input kind, got {kinds}")
    return next(iter(kinds.values()))


def panel_title(vm: VizModel, width: int = 38) -> str:
    """``label`` (wrapped at spaces to ``width`` characters) over the mixer name."""
    return f"{textwrap.fill(vm.label, width)}\n{vm.mixer}"


def tsne_report(models: Sequence[VizModel], samples: VizSamples, out: str | Path, backend: str = "sklearn",
                perplexity: float = 30.0, pca_dims: int = 50, k: int = 5, seed: int = 0, batch_size: int = 8,
                device: str = "cpu", progress: bool = True, n_jobs: int = 1) -> dict:
    """Embeddings -> PCA -> t-SNE per model, on the same samples; writes the figure and its numbers.

    ``.npz``: ``labels (N,)``, ``class_names``, ``panel_labels``, ``panel_sources``, and per panel ``i``:
    ``embeddings_i (N, D)``, ``pca_i (N, <=pca_dims)``, ``tsne_i (N, 2)``. ``.json``: settings and per panel
    kNN / silhouette scores. Returns the JSON content.
    """
    png, npz, js = sidecar_paths(out)
    check_same_kind(models)
    embs, labels = extract_embeddings([vm.model for vm in models], samples, batch_size, device, samples.total,
                                      "t-SNE embeddings", progress)
    arrays: dict[str, np.ndarray] = {"labels": labels, "class_names": np.asarray(samples.class_names),
                                     "panel_labels": np.asarray([vm.label for vm in models]),
                                     "panel_sources": np.asarray([vm.source for vm in models])}
    maps, panels = [], []
    panels_bar = tqdm(list(enumerate(zip(models, embs))), desc=f"t-SNE ({backend})", unit="map", disable=not progress,
                      leave=False)
    for i, (vm, emb) in panels_bar:
        reduced = pca_reduce(emb, pca_dims, seed)
        xy = run_tsne(reduced, backend, perplexity, seed, n_jobs)
        arrays.update({f"embeddings_{i}": emb, f"pca_{i}": reduced, f"tsne_{i}": xy})
        maps.append(xy)
        panels.append({"label": vm.label, "source": vm.source, "mixer": vm.mixer, "embed_dim": int(emb.shape[1]),
                       **separability(xy, labels, reduced, k)})
    counts = {samples.class_names[c]: int((labels == c).sum()) for c in sorted(set(labels.tolist()))}
    report = {"kind": samples.kind, "data": samples.description, "num_samples": int(len(labels)),
              "class_counts": counts, "backend": backend, "perplexity": perplexity, "pca_dims": pca_dims,
              "knn_k": k, "seed": seed, "png": str(png), "npz": str(npz), "panels": panels}
    np.savez_compressed(npz, **arrays)
    plot_tsne(maps, labels, samples.class_names, [panel_title(vm) for vm in models], panels, png)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return report


def erf_report(models: Sequence[VizModel], samples: VizSamples, out: str | Path,
               thresholds: Sequence[float] = THRESHOLDS, device: str = "cpu", progress: bool = True,
               display_decades: float | None = None) -> dict:
    """Mean ERF of every model over the same inputs; writes the figure, ``.npz`` (``erf_i``: raw mean map per
    model, ``panel_labels``, ``panel_sources``) and ``.json`` (per model: inputs used, support, area ratios...).
    Returns the JSON."""
    png, npz, js = sidecar_paths(out)
    kind = check_same_kind(models)
    if kind != samples.kind:
        raise UserInputError(f"the models take {kind}s but the samples are {samples.kind}s")
    inputs = [x for x, _ in samples]
    if not inputs:
        raise UserInputError(f"no inputs in {samples.description}")
    erfs, rows = [], []
    for vm in models:
        erf, used = compute_erf(vm.model, inputs, device, len(inputs), f"ERF {vm.label} [{vm.mixer}]", progress)
        erfs.append(erf)
        rows.append({"label": vm.label, "source": vm.source, "mixer": vm.mixer, "num_inputs": used,
                     **erf_metrics(erf, kind, thresholds)})
    report = {"kind": kind, "data": samples.description, "input_shape": list(inputs[0].shape),
              "map": "log10(mean relu(grad) + 1) / max", "display_decades": display_decades,
              "png": str(png), "npz": str(npz), "models": rows}
    np.savez_compressed(npz, panel_labels=np.asarray([vm.label for vm in models]),
                        panel_sources=np.asarray([vm.source for vm in models]),
                        **{f"erf_{i}": e for i, e in enumerate(erfs)})
    plot_erf(erfs, kind, [f"{vm.label} [{vm.mixer}]" if kind != "image" else panel_title(vm) for vm in models],
             rows, png, decades=display_decades)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return report
