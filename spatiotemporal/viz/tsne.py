"""PCA-50 + t-SNE of embeddings and how separable the classes are (TimeSformer paper Fig. 8 style).

Backend choice: scikit-learn's ``TSNE`` (Barnes-Hut, PCA init) is the default because scikit-learn is already
a dependency; measured on 2 CPU cores it needs about 200 s for 10k points after PCA-50, fine for the few
hundred to few thousand clips of a validation set. openTSNE (FFT-accelerated, about 2x faster at 10k points
and far faster beyond) is an optional extra: ``backend="opentsne"`` when ``pip install openTSNE`` is done.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.decomposition import PCA
from sklearn.metrics import silhouette_score
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from ..utils.errors import UserInputError

BACKENDS = ("sklearn", "opentsne")


def pca_reduce(x: np.ndarray, dims: int = 50, seed: int = 0) -> np.ndarray:
    """``(N, D) -> (N, min(dims, N, D))`` principal components (float32)."""
    x = np.asarray(x, dtype=np.float64)
    k = min(dims, x.shape[0], x.shape[1])
    return PCA(n_components=k, random_state=seed).fit_transform(x).astype(np.float32)


def default_perplexity(n: int, perplexity: float = 30.0) -> float:
    """``perplexity`` capped for small sets (t-SNE needs perplexity < N; about N/3 keeps it meaningful)."""
    return float(max(1.0, min(perplexity, (n - 1) / 3.0)))


def run_tsne(x: np.ndarray, backend: str = "sklearn", perplexity: float = 30.0, seed: int = 0,
             n_jobs: int = 1) -> np.ndarray:
    """``(N, d) -> (N, 2)`` t-SNE map (PCA initialisation, perplexity capped by :func:`default_perplexity`).

    Runs with every OpenMP / BLAS pool limited to ``n_jobs`` threads: with torch loaded there are two OpenMP
    runtimes, and on a busy machine their spinning workers made sklearn's Barnes-Hut t-SNE 10-40x slower
    (measured: 60 points 12.7 s with 2 threads vs 0.36 s with 1).
    """
    with threadpool_limits(limits=n_jobs):
        return _tsne(np.asarray(x, dtype=np.float32), backend, perplexity, seed, n_jobs)


def _tsne(x: np.ndarray, backend: str, perplexity: float, seed: int, n_jobs: int) -> np.ndarray:
    if x.shape[0] < 4:
        raise UserInputError(f"t-SNE needs at least 4 samples, got {x.shape[0]}")
    perp = default_perplexity(x.shape[0], perplexity)
    if backend == "sklearn":
        from sklearn.manifold import TSNE

        return TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed,
                    n_jobs=n_jobs).fit_transform(x).astype(np.float32)
    if backend == "opentsne":
        try:
            from openTSNE import TSNE as OpenTSNE
        except ImportError as e:
            raise UserInputError("--backend opentsne needs the openTSNE package (pip install openTSNE); "
                                 "the default backend sklearn needs nothing extra") from e
        return np.asarray(OpenTSNE(n_components=2, perplexity=perp, initialization="pca", random_state=seed,
                                   n_jobs=n_jobs).fit(x), dtype=np.float32)
    raise UserInputError(f"unknown t-SNE backend {backend!r}; expected one of {BACKENDS}")


def knn_loo_accuracy(x: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-NN accuracy: each point is classified by the majority label of its ``k`` nearest
    *other* points (ties go to the label of the nearest tied neighbour)."""
    labels = np.asarray(labels)
    n = len(labels)
    if n < 2:
        return float("nan")
    k = min(k, n - 1)
    _, idx = NearestNeighbors(n_neighbors=min(k + 1, n)).fit(x).kneighbors(x)
    correct = 0
    for i in range(n):
        nb = [j for j in idx[i] if j != i][:k]
        votes: dict[int, int] = {}
        for j in nb:
            votes[int(labels[j])] = votes.get(int(labels[j]), 0) + 1
        best = max(votes.values())
        pred = next(int(labels[j]) for j in nb if votes[int(labels[j])] == best)
        correct += pred == labels[i]
    return correct / n


def silhouette(x: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette (Euclidean) in [-1, 1]; NaN when there are fewer than 2 classes or no repeats."""
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels > len(labels) - 1:
        return float("nan")
    return float(silhouette_score(x, labels))


def separability(xy: np.ndarray, labels: np.ndarray, features: np.ndarray | None = None, k: int = 5) -> dict:
    """kNN (k, leave-one-out) accuracy and silhouette in the 2D map, and in ``features`` when given."""
    out = {"knn_acc_2d": knn_loo_accuracy(xy, labels, k), "silhouette_2d": silhouette(xy, labels)}
    if features is not None:
        out["knn_acc_features"] = knn_loo_accuracy(features, labels, k)
        out["silhouette_features"] = silhouette(features, labels)
    return {key: (None if isinstance(v, float) and math.isnan(v) else float(v)) for key, v in out.items()}
