"""Matplotlib figures of the t-SNE maps and the ERF maps (Agg backend, saved as PNG)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from .erf import normalize_erf  # noqa: E402

MAX_LEGEND = 20
CMAP = "inferno"


def class_colors(n: int) -> np.ndarray:
    """``(n, 4)`` RGBA: tab10 up to 10 classes, tab20 up to 20, else evenly spaced turbo."""
    if n <= 10:
        return plt.get_cmap("tab10")(np.arange(n))
    if n <= 20:
        return plt.get_cmap("tab20")(np.arange(n))
    return plt.get_cmap("turbo")(np.linspace(0.05, 0.95, n))


def _fmt(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"


def plot_tsne(maps: Sequence[np.ndarray], labels: np.ndarray, class_names: Sequence[str], titles: Sequence[str],
              scores: Sequence[dict], out: str | Path, panel_size: float = 4.0, dpi: int = 100) -> Path:
    """Panels side by side, one per ``(N, 2)`` map, points coloured by class, one shared legend below."""
    n = len(maps)
    colors = class_colors(len(class_names))
    present = sorted(set(int(v) for v in labels))
    legend_rows = 0 if len(present) > MAX_LEGEND else int(np.ceil(len(present) / max(1, min(len(present), 4 * n))))
    fig = plt.figure(figsize=(panel_size * n + 0.4, panel_size + 0.9 + 0.28 * legend_rows), dpi=dpi,
                     layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, n))
    size = float(np.clip(3000.0 / max(len(labels), 1), 6, 40))
    for ax, xy, title, sc in zip(axes, maps, titles, scores):
        for k in present:
            sel = labels == k
            ax.scatter(xy[sel, 0], xy[sel, 1], s=size, color=colors[k], alpha=0.85, linewidths=0)
        ax.set_title(f"{title}\nkNN-5 acc {_fmt(sc.get('knn_acc_2d'))} | silhouette {_fmt(sc.get('silhouette_2d'))}",
                     fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    if legend_rows:
        handles = [Line2D([], [], marker="o", linestyle="", color=colors[k], markersize=7, label=class_names[k])
                   for k in present]
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(present), 4 * n), fontsize=9,
                   frameon=False)
    else:
        fig.text(0.5, 0.01, f"{len(present)} classes (legend omitted)", ha="center", fontsize=9)
    out = Path(out)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out


def display_map(erf: np.ndarray, decades: float | None = None) -> np.ndarray:
    """What the heatmaps show, in [0, 1]: RepLKNet's ``log10(erf + 1) / max`` (``decades=None``), or
    ``log10(1 + 10**decades * erf / max) / decades``, a log scale over ``decades`` orders of magnitude that
    shows the weak tails whatever the gradients' absolute scale."""
    if decades is None:
        return normalize_erf(erf)
    peak = float(np.max(erf))
    if peak <= 0:
        return np.zeros_like(erf, dtype=np.float64)
    return np.log10(1.0 + 10.0**decades * np.asarray(erf, np.float64) / peak) / np.log10(1.0 + 10.0**decades)


def scale_label(decades: float | None) -> str:
    return "log10(ERF + 1) / max" if decades is None else f"log scale, {decades:g} decades below max"


def _ratio_text(metrics: dict) -> str:
    rs = metrics["area_ratios"]
    ts = "/".join(f"{r['threshold']:g}" for r in rs)
    text = f"area ratio at t={ts}: " + " / ".join(f"{r['area_ratio']:.3f}" for r in rs)
    if "temporal_ratios" in metrics:
        text += " | frames: " + " / ".join(str(min(r["side"], metrics["shape"][0])) for r in metrics["temporal_ratios"])
    return text


def _heat(ax, img: np.ndarray, title: str, origin: str = "upper"):
    im = ax.imshow(img, cmap=CMAP, vmin=0.0, vmax=1.0, interpolation="nearest", origin=origin)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def _video_row(sub, n: np.ndarray, metrics: dict):
    t = n.shape[0]
    axes = sub.subplots(1, t + 1, gridspec_kw={"width_ratios": [1.0] * t + [1.6]})
    im = None
    for i in range(t):
        im = _heat(axes[i], n[i], f"frame {i}" + (" (centre)" if i == t // 2 else ""))
    mass = np.asarray(metrics["frame_mass"])
    ax = axes[-1]
    ax.bar(np.arange(t), mass, color=["#d62728" if i == t // 2 else "#4c72b0" for i in range(t)])
    ax.set_ylim(0, max(0.05, float(mass.max()) * 1.15))
    ax.set_xticks(np.arange(t))
    ax.tick_params(labelsize=7)
    ax.set_title("mass per frame", fontsize=9)
    return im, list(axes[:-1])


def _volume_row(sub, n: np.ndarray):
    h, w, d = n.shape
    axes = sub.subplots(1, 4)
    views = [
        (n[:, :, d // 2].T, f"axial (z={d // 2})"),
        (n[:, w // 2, :].T, f"coronal (y={w // 2})"),
        (n[h // 2, :, :].T, f"sagittal (x={h // 2})"),
        (n.max(axis=2).T, "MIP along z"),
    ]
    im = None
    for ax, (img, title) in zip(axes, views):
        im = _heat(ax, img, title, origin="lower")
    return im, list(axes)


def plot_erf(erfs: Sequence[np.ndarray], kind: str, titles: Sequence[str], metrics: Sequence[dict],
             out: str | Path, dpi: int = 100, decades: float | None = None) -> Path:
    """One row per model (images: one panel per model, side by side), on the :func:`display_map` scale:
    videos a heatmap per frame + mass per frame, volumes 3 orthogonal centre slices + a z-MIP."""
    rows = len(erfs)
    out = Path(out)
    used = sorted({m["num_inputs"] for m in metrics if "num_inputs" in m})
    over = f", mean over {'/'.join(map(str, used))} inputs" if used else ""
    if kind == "image":
        fig = plt.figure(figsize=(3.3 * rows + 0.8, 4.4), dpi=dpi, layout="constrained")
        fig.suptitle(f"ERF of the centre token{over}", fontsize=10)
        axes = np.atleast_1d(fig.subplots(1, rows))
        im = None
        for ax, erf, title, m in zip(axes, erfs, titles, metrics):
            im = _heat(ax, display_map(erf, decades), title)
            ratios = m["area_ratios"]
            ax.set_xlabel("area ratio\n" + ", ".join(f"t={r['threshold']:g}: {r['area_ratio']:.3f}"
                                                     for r in ratios[:2]) + "\n"
                          + ", ".join(f"t={r['threshold']:g}: {r['area_ratio']:.3f}" for r in ratios[2:]), fontsize=8)
        fig.colorbar(im, ax=list(axes), shrink=0.7, label=scale_label(decades))
        fig.savefig(out, dpi=dpi)
        plt.close(fig)
        return out
    t = erfs[0].shape[0]
    width = 1.25 * (t + 1.6) + 1.0 if kind == "video" else 9.5
    height = 1.85 if kind == "video" else 2.75
    fig = plt.figure(figsize=(width, height * rows + 0.35), dpi=dpi, layout="constrained")
    fig.suptitle(f"ERF of the centre of the last feature map{over}; colour: {scale_label(decades)}", fontsize=10)
    subs = np.atleast_1d(fig.subfigures(rows, 1))
    for sub, erf, title, m in zip(subs, erfs, titles, metrics):
        n = display_map(erf, decades)
        im, axes = _video_row(sub, n, m) if kind == "video" else _volume_row(sub, n)
        sub.suptitle(f"{title}   |   {_ratio_text(m)}", fontsize=9.5)
        cb = sub.colorbar(im, ax=axes, shrink=0.85, aspect=12, pad=0.01)
        cb.ax.tick_params(labelsize=7)
    fig.savefig(out, dpi=dpi)
    plt.close(fig)
    return out
