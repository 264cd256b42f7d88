"""The bar chart of ``spatio probe``: the metric under each perturbation, overall and per class (PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .plots import class_colors  # noqa: E402


def plot_probe(result: dict, path: str | Path, title: str = "") -> None:
    """Grouped bars: one group per perturbation, one bar for all samples (black) and one per class. ``result``
    is the dict of :func:`spatiotemporal.pipelines.probe.probe_results`."""
    perts = result["perturbations"]
    names = list(perts)
    classes = list(next(iter(perts.values()))["per_class"])
    series = [("all", [perts[n][result["metric"]] for n in names], "black")]
    colors = class_colors(len(classes))
    series += [(c, [perts[n]["per_class"].get(c) for n in names], colors[i]) for i, c in enumerate(classes)]
    x = np.arange(len(names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(names) + 2), 4))
    for i, (label, vals, color) in enumerate(series):
        heights = [np.nan if v is None else v for v in vals]
        ax.bar(x - 0.4 + width * (i + 0.5), heights, width, label=label, color=color)
    ax.set_xticks(x, names, rotation=20, ha="right")
    ax.set_ylabel(result["metric"])
    ax.set_title(title or f"{result['metric']} under each perturbation ({result.get('split', '')})")
    ax.legend(fontsize=7, ncol=2, loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
