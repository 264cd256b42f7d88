"""Per-sample embeddings with ``model.forward_features``: ``(B, ...) -> (B, D)``.

ViT: pooled / class embedding; TimeSformer: final normed class token; UNETR: mean of the normed encoder tokens.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..utils.errors import UserInputError


def _batches(samples: Iterable[tuple[torch.Tensor, int]], batch_size: int):
    xs, ys = [], []
    for x, y in samples:
        xs.append(x)
        ys.append(int(y))
        if len(xs) == batch_size:
            yield torch.stack(xs), ys
            xs, ys = [], []
    if xs:
        yield torch.stack(xs), ys


@torch.no_grad()
def extract_embeddings(models: Sequence[nn.Module], samples: Iterable[tuple[torch.Tensor, int]],
                       batch_size: int = 8, device: str | torch.device = "cpu", total: int | None = None,
                       desc: str = "embeddings", progress: bool = True) -> tuple[list[np.ndarray], np.ndarray]:
    """One pass over ``(x, label)`` samples through every model (each sample is read once).

    Returns ``([embeddings (N, D_m) float32 per model], labels (N,) int64)``, in sample order.
    """
    for m in models:
        m.eval()
    feats: list[list[np.ndarray]] = [[] for _ in models]
    labels: list[int] = []
    with tqdm(total=total, desc=desc, unit="sample", disable=not progress, leave=False) as bar:
        for x, y in _batches(samples, batch_size):
            x = x.to(device, torch.float32)
            for out, m in zip(feats, models):
                out.append(m.forward_features(x).float().cpu().numpy())
            labels.extend(y)
            bar.update(len(y))
    if not labels:
        raise UserInputError("no samples to embed (the dataset split is empty or every item was unreadable)")
    return [np.concatenate(f).astype(np.float32) for f in feats], np.asarray(labels, dtype=np.int64)
