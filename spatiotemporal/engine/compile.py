"""``train.compile``: ``torch.compile`` of the model for training and evaluation, falling back to eager.

Compilation happens lazily, at the first call with a new input shape or grad mode (the first training step,
the first evaluation, a short last batch), and can fail where eager code runs (no C++ compiler, an
unsupported op, a backend bug). :class:`CompiledOrEager` then logs one line and runs the model eagerly from
that call on. An input the eager model rejects too is the caller's error and is raised as such.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

__all__ = ["CompiledOrEager"]

logger = logging.getLogger("spatiotemporal.engine")


def _first_line(e: BaseException) -> str:
    """``Type: first line`` of the innermost cause (dynamo wraps a backend's error in ``BackendCompilerFailed``)."""
    while getattr(e, "inner_exception", None) is not None or e.__cause__ is not None:
        e = getattr(e, "inner_exception", None) or e.__cause__
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


class CompiledOrEager(nn.Module):
    """``torch.compile(model, **options)`` with an eager fallback; ``forward(*args, **kwargs)`` as the model's.

    ``model`` is the module to run (a bare model or its DDP wrapper); parameters are shared, not copied.
    ``compiled`` is False once the fallback was taken.
    """

    def __init__(self, model: nn.Module, **options) -> None:
        super().__init__()
        self.eager = model
        self.optimized = torch.compile(model, **options)
        self.compiled = True

    def forward(self, *args, **kwargs):
        if not self.compiled:
            return self.eager(*args, **kwargs)
        try:
            return self.optimized(*args, **kwargs)
        except Exception as compile_error:  # noqa: BLE001 - any failure of the compiled path is retried eagerly
            out = self.eager(*args, **kwargs)  # an input error raises here, as it would without compile
            self.compiled = False
            logger.warning("torch.compile failed (%s): training and evaluating eagerly from here on",
                           _first_line(compile_error))
            return out
