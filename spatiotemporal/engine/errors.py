"""Errors that stop a training run; each message is one line that says what to do next."""

from __future__ import annotations

from ..utils.errors import SpatioUserError

__all__ = ["TrainingDiverged", "NoUsableSamples"]


class TrainingDiverged(SpatioUserError, FloatingPointError):
    """Non-finite loss, weights, optimiser state or evaluation metric. Raised before anything non-finite
    is written: the message names the step, the epoch and the last good checkpoint to resume from."""


class NoUsableSamples(SpatioUserError, ValueError):
    """An epoch or an evaluation without a single usable sample (every input skipped, or an empty split)."""
