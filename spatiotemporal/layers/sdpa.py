"""The one softmax-attention kernel every mixer calls.

``attend`` goes through ``torch.nn.functional.scaled_dot_product_attention`` (flash and
memory-efficient kernels on GPU). The single exception is measured in
``benchmarks/attention_dispatch.py``: on CPU, short sequences (TimeSformer's 8-frame temporal
attention) are faster with two batched matmuls, in inference (0.47-0.89x SDPA's time up to 24
tokens) and in training (0.4-0.8x for forward + backward up to 48 tokens). Both compute the same
function (``softmax(q k^T * scale) v``) in the same precision.

SDPA does not return the attention weights. Inside ``record_attention()`` (attention maps only: ``spatio viz
attention``), ``attend`` computes them explicitly, records them and returns ``weights @ v``: the same function as
the fast path (a test compares the outputs).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F

#: Sequences up to this length use the matmul path on CPU (fp32; bf16 under autocast: ``CPU_SHORT_SEQ_BF16``).
CPU_SHORT_SEQ = 32
CPU_SHORT_SEQ_BF16 = 32


_RECORDERS: list[list[torch.Tensor]] = []


@contextmanager
def record_attention() -> Iterator[list[torch.Tensor]]:
    """Within the context every ``attend`` call appends its weights ``(..., Nq, Nk)`` (detached) to the yielded
    list, in call order. Slower and memory-hungry: for inspection, never for training."""
    store: list[torch.Tensor] = []
    _RECORDERS.append(store)
    try:
        yield store
    finally:
        _RECORDERS.remove(store)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float | None = None) -> torch.Tensor:
    """Softmax attention. ``q (..., Nq, d)``, ``k (..., Nk, d)``, ``v (..., Nk, dv) -> (..., Nq, dv)``."""
    if _RECORDERS:
        s = q.shape[-1] ** -0.5 if scale is None else scale
        weights = ((q * s) @ k.transpose(-2, -1)).softmax(dim=-1)
        for store in _RECORDERS:
            store.append(weights.detach())
        return weights @ v
    limit = CPU_SHORT_SEQ_BF16 if q.dtype == torch.bfloat16 else CPU_SHORT_SEQ
    if q.device.type == "cpu" and k.shape[-2] <= limit and q.shape[-2] <= limit:
        s = q.shape[-1] ** -0.5 if scale is None else scale
        attn = (q * s) @ k.transpose(-2, -1)
        return attn.softmax(dim=-1) @ v
    return F.scaled_dot_product_attention(q, k, v, scale=scale)
