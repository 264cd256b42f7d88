"""Rank-0 progress bar (tqdm: loss, samples/s under a configurable unit name, ETA)."""

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
    """One bar per epoch over its batches; ``initial`` = batches already done (resume)."""

    def __init__(self, total: int, initial: int, desc: str, unit: str, enabled: bool) -> None:
        self.unit = unit
        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="it", disable=not enabled,
                        dynamic_ncols=True, leave=False)

    @property
    def enabled(self) -> bool:
        return not self.bar.disable

    def update(self, n: int = 1) -> None:
        self.bar.update(n)

    def set_stats(self, loss: float, rate: float, lr: float) -> None:
        self.bar.set_postfix({"loss": f"{loss:.4f}", f"{self.unit}/s": f"{rate:.1f}", "lr": f"{lr:.2e}"},
                             refresh=False)

    def close(self) -> None:
        self.bar.close()
