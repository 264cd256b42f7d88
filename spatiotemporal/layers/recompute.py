"""Activation checkpointing policies: what a block's backward recomputes instead of keeping from the forward.

- ``none``: autograd keeps everything it saves; nothing is recomputed.
- ``pointwise``: keeps the outputs of matmuls, convolutions and attention kernels; recomputes norms,
  activations (GELU), softmax, scaling and copies.
- ``projections``: keeps the outputs of widening matmuls (qkv, fc1), convolutions and attention kernels;
  also recomputes the narrowing projections (attention out-projection, ``temporal_fc``, fc2).
- ``full``: keeps the block's input; recomputes the whole block.

``pointwise`` and ``projections`` are selective activation checkpointing (``torch.utils.checkpoint`` with a
policy from ``create_selective_checkpoint_contexts``); ``full`` is plain ``torch.utils.checkpoint``. A
narrowing projection's output is never needed by the backward itself (only its input, recomputed from the
kept attention output or fc1 output), so recomputing it trades a matmul of ``C x C`` per token for ``C`` floats
per token. Memory and time of each policy: ``benchmarks/memory_frontier.py``.

A recomputation replays the forward, so a batch norm in training would update its running statistics a second
time; ``run_recomputed`` restores them after each recomputation (``torch.utils.checkpoint`` does not), so the
statistics are those of the ``none`` policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial

import torch
from torch import nn
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

__all__ = ["RECOMPUTE_POLICIES", "check_policy", "run_recomputed"]

RECOMPUTE_POLICIES = ("none", "pointwise", "projections", "full")

_aten = torch.ops.aten
_MATMULS = {_aten.mm.default, _aten.addmm.default, _aten.bmm.default, _aten.baddbmm.default}
_KEPT = {
    _aten.convolution.default,
    *(getattr(_aten, name).default for name in (
        "_scaled_dot_product_flash_attention_for_cpu", "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention", "_scaled_dot_product_cudnn_attention",
    ) if hasattr(_aten, name)),
}


def _widening(op, args) -> bool:
    """A matmul whose output is wider than its input (``mm(a, b)``, ``addmm(bias, a, b)``, batched alike)."""
    a, b = (args[1], args[2]) if op in (_aten.addmm.default, _aten.baddbmm.default) else (args[0], args[1])
    return b.shape[-1] > a.shape[-1]


def _policy(narrow_recomputed: bool, ctx, op, *args, **kwargs) -> CheckpointPolicy:
    if op in _KEPT or (op in _MATMULS and not (narrow_recomputed and not _widening(op, args))):
        return CheckpointPolicy.MUST_SAVE
    return CheckpointPolicy.PREFER_RECOMPUTE


def check_policy(policy: str) -> str:
    if policy not in RECOMPUTE_POLICIES:
        raise ValueError(f"recompute must be one of {', '.join(RECOMPUTE_POLICIES)}, got {policy!r}")
    return policy


def _running_stats(fn: Callable) -> list[torch.Tensor]:
    """The running statistics that ``fn``'s norms update in training (batch norms, tracking instance norms)."""
    if not isinstance(fn, nn.Module):
        return []
    return [b for m in fn.modules() if m.training and getattr(m, "track_running_stats", False)
            for b in (m.running_mean, m.running_var, m.num_batches_tracked) if b is not None]


@contextmanager
def _restoring(stats: list[torch.Tensor], inner) -> Iterator[None]:
    """``inner``, then ``stats`` set back to their values on entry (a recomputation leaves them as it found them)."""
    saved = [s.clone() for s in stats]
    try:
        with inner:
            yield
    finally:
        with torch.no_grad():
            for s, v in zip(stats, saved):
                s.copy_(v)


def _contexts(selective: Callable | None, stats: list[torch.Tensor]):
    forward, recompute = create_selective_checkpoint_contexts(selective) if selective else (nullcontext(),
                                                                                          nullcontext())
    return forward, _restoring(stats, recompute) if stats else recompute


def run_recomputed(policy: str, fn: Callable, *args):
    """``fn(*args)`` under ``policy`` (only while training with autograd on; otherwise a plain call)."""
    if policy == "none" or not torch.is_grad_enabled():
        return fn(*args)
    selective = None if policy == "full" else partial(_policy, policy == "projections")
    contexts = partial(_contexts, selective, _running_stats(fn))
    return checkpoint(fn, *args, use_reentrant=False, context_fn=contexts)
