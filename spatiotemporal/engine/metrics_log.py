"""``metrics.jsonl`` (one JSON object per event) plus TensorBoard events when tensorboard is installed.

On resume the JSONL is cut back to the events at or before the resumed step, so replayed steps are
not logged twice; TensorBoard gets ``purge_step`` for the same reason.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..utils.atomic import atomic_write_text

__all__ = ["MetricsLogger", "read_metrics"]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All events of a ``metrics.jsonl`` (a torn last line, from a kill mid-write, is ignored)."""
    events = []
    p = Path(path)
    if not p.exists():
        return events
    for line in p.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)  # JSON has no NaN / inf
    return v


class MetricsLogger:
    """Append-only event log; a no-op object on ranks other than 0 (``enabled=False``)."""

    def __init__(self, out_dir: str | Path, enabled: bool, resume_step: int | None, tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(out_dir) / "metrics.jsonl"
        self._tb = None
        if not enabled:
            return
        if resume_step is None:
            if self.path.exists():
                self.path.unlink()
        elif self.path.exists():
            kept = [e for e in read_metrics(self.path) if e.get("step", 0) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(e) + "\n" for e in kept))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                SummaryWriter = None
            if SummaryWriter is not None:
                purge = None if resume_step is None else resume_step + 1
                self._tb = SummaryWriter(log_dir=str(Path(out_dir) / "tensorboard"), purge_step=purge)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (closed in close())

    def log(self, event: dict[str, Any]) -> None:
        """Write one event; it must contain ``step``. Numeric fields also go to TensorBoard."""
        if not self.enabled:
            return
        event = {k: _jsonable(v) for k, v in event.items()}
        self._file.write(json.dumps(event) + "\n")
        self._file.flush()
        if self._tb is not None:
            for k, v in event.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self._tb.add_scalar(k, v, event["step"])

    def close(self) -> None:
        if not self.enabled:
            return
        self._file.close()
        if self._tb is not None:
            self._tb.close()
