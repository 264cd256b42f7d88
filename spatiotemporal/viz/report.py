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
from .erf import THRESHOLDS, compute_erf, erf_metrics, feature_map_names
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
    check_same_kind(models)
    embs, labels = extract_embeddings([vm.model for vm in models], samples, batch_size, device, samples.total,
                                      "t-SNE embeddings", progress)
    info = [{"label": vm.label, "source": vm.source, "mixer": vm.mixer, "title": panel_title(vm)} for vm in models]
    return tsne_of_embeddings(embs, labels, samples.class_names, info, samples.kind, samples.description, out,
                              backend, perplexity, pca_dims, k, seed, progress, n_jobs)


def tsne_of_embeddings(embs: Sequence[np.ndarray], labels: np.ndarray, class_names: Sequence[str],
                       info: Sequence[dict], kind: str, description: str, out: str | Path, backend: str = "sklearn",
                       perplexity: float = 30.0, pca_dims: int = 50, k: int = 5, seed: int = 0,
                       progress: bool = True, n_jobs: int = 1) -> dict:
    """PCA -> t-SNE per panel of precomputed embeddings ``(N, D_i)`` with shared ``labels``; ``info`` per panel:
    ``label``, ``source``, ``mixer``, ``title``. Writes the figure, ``.npz`` and ``.json``; returns the JSON."""
    png, npz, js = sidecar_paths(out)
    arrays: dict[str, np.ndarray] = {"labels": labels, "class_names": np.asarray(class_names),
                                     "panel_labels": np.asarray([p["label"] for p in info]),
                                     "panel_sources": np.asarray([p["source"] for p in info])}
    maps, panels = [], []
    panels_bar = tqdm(list(enumerate(zip(info, embs))), desc=f"t-SNE ({backend})", unit="map", disable=not progress,
                      leave=False)
    for i, (p, emb) in panels_bar:
        reduced = pca_reduce(emb, pca_dims, seed)
        xy = run_tsne(reduced, backend, perplexity, seed, n_jobs)
        arrays.update({f"embeddings_{i}": emb, f"pca_{i}": reduced, f"tsne_{i}": xy})
        maps.append(xy)
        panels.append({"label": p["label"], "source": p["source"], "mixer": p["mixer"],
                       "embed_dim": int(emb.shape[1]), **separability(xy, labels, reduced, k)})
    counts = {class_names[c] if c < len(class_names) else str(c): int((labels == c).sum())
              for c in sorted(set(labels.tolist()))}
    report = {"kind": kind, "data": description, "num_samples": int(len(labels)),
              "class_counts": counts, "backend": backend, "perplexity": perplexity, "pca_dims": pca_dims,
              "knn_k": k, "seed": seed, "png": str(png), "npz": str(npz), "panels": panels}
    np.savez_compressed(npz, **arrays)
    plot_tsne(maps, labels, class_names, [p["title"] for p in info], panels, png)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return report


def resolve_stages(model, x, stages: Sequence[str]) -> list[str]:
    """``stages`` (``all``, names such as ``stage1`` / ``head`` / ``blocks.3`` / ``stage2.0``, 1-based stage numbers
    of a hierarchy, or block indices of a flat model) -> map names."""
    names = feature_map_names(model, x)
    if list(stages) == ["all"]:
        return names
    out = [(f"stage{s}" if f"stage{s}" in names else f"blocks.{s}") if str(s).isdigit() else str(s) for s in stages]
    inner = list(getattr(model, "inner_intermediate_names", list)())
    bad = [s for s in out if s not in names and s not in inner]
    if bad:
        raise UserInputError(f"--stage {', '.join(bad)}: {type(model).__name__} has the maps {', '.join(names)} "
                             f"(or give a stage number / block index{', stage.block' if inner else ''}, or 'all')")
    return out


def tsne_of_embedding_files(paths: Sequence[str | Path], out: str | Path, **kw) -> dict:
    """t-SNE panels of ``spatio embed`` outputs (one panel per folder; they must list the same items)."""
    from .embed_files import read_embeddings

    loaded = [read_embeddings(p) for p in paths]
    labels, names = loaded[0][1], loaded[0][2]
    for p, (_, lab, _, _) in zip(paths, loaded):
        if lab.shape != labels.shape or (lab != labels).any():
            raise UserInputError(f"{p}: its items differ from {paths[0]}'s (embed the same split with the same "
                                 "data)")
    info = [{"label": Path(p).name, "source": m.get("source", str(p)), "mixer": f"layer {m.get('layer')}, pool "
             f"{m.get('pool')}", "title": f"{Path(p).name}\n{m.get('source', '')}"} for p, (_, _, _, m) in
            zip(paths, loaded)]
    meta = loaded[0][3]
    return tsne_of_embeddings([x for x, _, _, _ in loaded], labels, names, info, meta.get("kind", "?"),
                              meta.get("data_description", ""), out, **kw)


def erf_report(models: Sequence[VizModel], samples: VizSamples, out: str | Path,
               thresholds: Sequence[float] = THRESHOLDS, device: str = "cpu", progress: bool = True,
               display_decades: float | None = None, stages: Sequence[str] | None = None) -> dict:
    """Mean ERF of every model over the same inputs; writes the figure, ``.npz`` (``erf_i``: raw mean map per
    panel, ``panel_labels``, ``panel_sources``) and ``.json`` (per panel: inputs used, support, area ratios...).
    With ``stages`` (see :func:`resolve_stages`), one panel per model and named feature map (``"stage"``) instead
    of the last map only. Returns the JSON."""
    png, npz, js = sidecar_paths(out)
    kind = check_same_kind(models)
    if kind != samples.kind:
        raise UserInputError(f"the models take {kind}s but the samples are {samples.kind}s")
    inputs = [x for x, _ in samples]
    if not inputs:
        raise UserInputError(f"no inputs in {samples.description}")
    erfs, rows, panels = [], [], []
    for vm in models:
        maps = resolve_stages(vm.model, inputs[0][None].to(device), stages) if stages else [None]
        for stage in maps:
            tag = f" · {stage}" if stage else ""
            erf, used = compute_erf(vm.model, inputs, device, len(inputs), f"ERF {vm.label}{tag} [{vm.mixer}]",
                                    progress, stage)
            erfs.append(erf)
            panels.append((vm, tag))
            rows.append({"label": vm.label + tag, "source": vm.source, "mixer": vm.mixer, "stage": stage,
                         "num_inputs": used, **erf_metrics(erf, kind, thresholds)})
    report = {"kind": kind, "data": samples.description, "input_shape": list(inputs[0].shape),
              "map": "log10(mean relu(grad) + 1) / max", "display_decades": display_decades,
              "png": str(png), "npz": str(npz), "models": rows}
    np.savez_compressed(npz, panel_labels=np.asarray([vm.label + tag for vm, tag in panels]),
                        panel_sources=np.asarray([vm.source for vm, _ in panels]),
                        **{f"erf_{i}": e for i, e in enumerate(erfs)})
    plot_erf(erfs, kind, [f"{vm.label}{tag} [{vm.mixer}]" if kind != "image" else panel_title(vm) + tag
                          for vm, tag in panels], rows, png, decades=display_decades)
    js.write_text(json.dumps(report, indent=2) + "\n")
    return report
