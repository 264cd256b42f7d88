"""Rank-0 progress bars (tqdm: batches with ETA, plus loss, samples/s under a configurable unit name, lr)
over an epoch's training batches or an evaluation's batches; off when stderr is not a terminal, where
the trainer writes plain log lines instead."""

from __future__ import annotations

import sys
from typing import Literal

from tqdm.auto import tqdm

__all__ = ["ProgressBar", "progress_enabled"]


def progress_enabled(mode: Literal["auto", "always", "never"], is_main: bool) -> bool:
    """``auto`` shows the bar only when stderr is a terminal; never on ranks other than 0."""
    if not is_main or mode == "never":
        return False
    return mode == "always" or sys.stderr.isatty()


class ProgressBar:
    """One bar per epoch (or evaluation) over its batches; ``initial`` = batches already done (resume)."""

    def __init__(self, total: int, initial: int, desc: str, unit: str, enabled: bool, leave: bool = False) -> None:
        """``leave``: keep the finished bar on screen (an epoch's final loss and speed stay readable)."""
        self.unit = unit
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="it", disable=not enabled,
                        dynamic_ncols=True, leave=leave)

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_stats(self, loss: float | None, rate: float, lr: float) -> None:
        """``loss`` None: the logging window had no usable sample."""
        stats = {} if loss is None else {"loss": f"{loss:.4f}"}
        stats.update({f"{self.unit}/s": f"{rate:.1f}", "lr": f"{lr:.2e}"})
        self.bar.set_postfix(stats, refresh=True)

    def close(self) -> None:
        self.bar.close()
