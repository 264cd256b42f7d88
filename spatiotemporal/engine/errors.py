"""Errors that stop a training run; each message is one line that says what to do next."""

from __future__ import annotations

__all__ = ["TrainingDiverged", "NoUsableSamples"]


class TrainingDiverged(FloatingPointError):
    """Non-finite loss, weights, optimiser state or evaluation metric. Raised before anything non-finite
    is written: the message names the step, the epoch and the last good checkpoint to resume from."""


class NoUsableSamples(ValueError):
    """An epoch or an evaluation without a single usable sample (every input skipped, or an empty split)."""
