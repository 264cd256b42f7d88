"""Rank-0 progress bars (tqdm: batches with ETA, plus loss, samples/s under a configurable unit name, lr)
over an epoch's training batches or an evaluation's batches; off when stderr is not a terminal, where
the trainer writes plain log lines instead. :func:`track` does the same for any loop (``spatio eval``)."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Literal, TypeVar

from tqdm.auto import tqdm

__all__ = ["ProgressBar", "progress_enabled", "track"]

T = TypeVar("T")
log = logging.getLogger("spatiotemporal.progress")


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


def track(items: Iterable[T], desc: str, unit: str = "it", total: int | None = None,
          interval_s: float = 30.0) -> Iterator[T]:
    """Yield ``items`` while showing progress: a tqdm bar (count, rate, ETA) when stderr is a terminal; otherwise
    plain log lines, ``desc: i/total unit (rate, eta)``, after the first item, then at most every ``interval_s``
    seconds (0: after every item) and after the last."""
    total = len(items) if total is None else total  # type: ignore[arg-type]
    if progress_enabled("auto", True):
        yield from tqdm(items, total=total, desc=desc, unit=unit, dynamic_ncols=True, leave=False)
        return
    log.info("%s: %d %s", desc, total, unit)
    t0 = last = time.perf_counter()
    for i, item in enumerate(items, 1):
        yield item
        now = time.perf_counter()
        if i == 1 or i == total or now - last >= interval_s:
            rate = i / max(now - t0, 1e-9)
            eta = time.strftime("%H:%M:%S", time.gmtime(max(total - i, 0) / rate))
            log.info("%s: %d/%d %s (%.3g %s/s, eta %s)", desc, i, total, unit, rate, unit, eta)
            last = now
