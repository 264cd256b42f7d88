"""t-SNE maps, separability scores and the written PNG / npz / json of a t-SNE report."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from spatiotemporal import create_model
from spatiotemporal.viz import (
    VizModel,
    VizSamples,
    knn_loo_accuracy,
    pca_reduce,
    plot_tsne,
    run_tsne,
    separability,
    tsne_report,
)


def _clusters(n_per=20, dim=64, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (3, dim))
    x = np.concatenate([c + rng.normal(0, spread, (n_per, dim)) for c in centres]).astype(np.float32)
    return x, np.repeat(np.arange(3), n_per)


def test_knn_leave_one_out_on_a_hand_example():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [1.5]])
    y = np.array([0, 0, 0, 1, 1, 1, 1])  # the last point sits among class 0
    assert knn_loo_accuracy(x, y, k=1) == pytest.approx(4 / 7)  # 1, 2 (nearest 1.5) and 1.5 (nearest 1) fail
    assert knn_loo_accuracy(x, y, k=3) == pytest.approx(6 / 7)  # only the lone class-1 point at 1.5 fails


def test_tsne_separates_clusters_and_not_random_labels():
    x, y = _clusters()
    red = pca_reduce(x, 50)
    assert red.shape == (60, 50)
    xy = run_tsne(red, perplexity=30, seed=0)
    assert xy.shape == (60, 2) and np.isfinite(xy).all()
    sc = separability(xy, y, red)
    assert sc["knn_acc_2d"] == 1.0 and sc["knn_acc_features"] == 1.0
    assert sc["silhouette_2d"] > 0.5 and sc["silhouette_features"] > 0.5
    shuffled = np.random.default_rng(1).permutation(y)
    bad = separability(xy, shuffled)
    assert bad["knn_acc_2d"] < 0.7 and bad["silhouette_2d"] < 0.1
    assert separability(xy, np.zeros(60, int))["silhouette_2d"] is None  # one class: undefined, not a crash


def test_plot_tsne_png_has_the_figure_size(tmp_path):
    x, y = _clusters(n_per=5)
    maps = [x[:, :2], x[:, 2:4]]
    out = plot_tsne(maps, y, ["a", "b", "c"], ["m1\njoint", "m2\ndivided"], [{"knn_acc_2d": 1.0}, {}],
                    tmp_path / "t.png", panel_size=3.0, dpi=80)
    with Image.open(out) as im:  # (3 * 2 + 0.4) x (3 + 0.9 + 0.28 legend row) inches at 80 dpi
        assert im.format == "PNG" and im.size == (512, 334)


def _colour_samples(n_per=8, size=32):
    """Three classes of flat-coloured images with noise; a random ViT keeps them apart."""
    g = torch.Generator().manual_seed(0)
    colours = torch.tensor([[1.5, -1.0, -1.0], [-1.0, 1.5, -1.0], [-1.0, -1.0, 1.5]])
    items = [(colours[c][:, None, None] + 0.2 * torch.randn(3, size, size, generator=g), c)
             for i in range(n_per) for c in range(3)]
    return VizSamples("image", ["red", "green", "blue"], len(items), "colour patches", lambda: iter(items))


def test_tsne_report_writes_png_npz_json(tmp_path):
    torch.manual_seed(0)
    models = [VizModel(create_model("vit_tiny_builtin", depth=1, init_values=None, mixer=m).eval(), f"vit {m}",
                       f"vit_tiny_builtin:mixer={m}", m) for m in ("joint", "xca")]
    rep = tsne_report(models, _colour_samples(), tmp_path / "sub" / "tsne.png", perplexity=5, progress=False)
    png, npz, js = tmp_path / "sub" / "tsne.png", tmp_path / "sub" / "tsne.npz", tmp_path / "sub" / "tsne.json"
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size == (840, 518)  # 2 panels of 4 in + legend row, 100 dpi
    d = np.load(npz)
    assert d["labels"].tolist() == [0, 1, 2] * 8
    assert list(d["class_names"]) == ["red", "green", "blue"] and list(d["panel_labels"]) == ["vit joint", "vit xca"]
    for i in range(2):
        assert d[f"embeddings_{i}"].shape == (24, 128) and d[f"tsne_{i}"].shape == (24, 2)
        assert d[f"pca_{i}"].shape == (24, 24)
    saved = json.loads(js.read_text())
    assert saved == rep
    assert saved["num_samples"] == 24 and saved["class_counts"] == {"red": 8, "green": 8, "blue": 8}
    assert saved["perplexity"] == 5 and saved["knn_k"] == 5
    for i, p in enumerate(saved["panels"]):
        again = separability(d[f"tsne_{i}"], d["labels"], d[f"pca_{i}"])
        assert p["knn_acc_2d"] == pytest.approx(again["knn_acc_2d"])
        assert p["silhouette_2d"] == pytest.approx(again["silhouette_2d"])
        assert p["knn_acc_features"] == 1.0  # flat colours stay separable through a random ViT
    assert [p["mixer"] for p in saved["panels"]] == ["joint", "xca"]
