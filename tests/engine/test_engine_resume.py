"""Exact resume: a run SIGKILLed mid-epoch and resumed ends bit-identical to an uninterrupted run, weight EMA
(``train.ema``) included."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from engine_toy import one_thread, run, toy_config

from spatiotemporal.engine import EmaConfig, load_checkpoint, read_metrics

TOY = Path(__file__).with_name("engine_toy.py")
COMMON = {"num_workers": 2, "checkpoint_every": 4}  # 6 steps/epoch: checkpoints at 4, 6 (epoch end), 8
EMA = {"decay": 0.9, "warmup": True}  # the warm-up decay depends on the step count: it must resume too
KILL_AFTER = 10  # the child hangs in train_step after optimiser step 10


def _wait_for_kill_point(proc: subprocess.Popen, out: Path, log: Path, timeout: float = 180.0) -> None:
    """Until last.pt is at step >= 8 and step 10 is logged (so steps 9, 10 must be replayed)."""
    last = out / "checkpoints" / "last.pt"
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, f"child exited early ({proc.returncode}):\n{log.read_text()}"
        logged = {e["step"] for e in read_metrics(out / "metrics.jsonl")}
        if KILL_AFTER in logged and last.exists() and load_checkpoint(last)["step"] >= 8:
            return
        time.sleep(0.2)
    raise AssertionError(f"child did not reach step {KILL_AFTER} in {timeout}s:\n{log.read_text()}")


def _without_throughput(events):
    return [{k: v for k, v in e.items() if k != "throughput"} for e in events]


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path):
    out_b, log = tmp_path / "b", tmp_path / "child.log"
    # run B in a subprocess, killed with SIGKILL mid-epoch (it starts first: its import time overlaps run A)
    with open(log, "w") as logf:
        proc = subprocess.Popen(
            [sys.executable, str(TOY), str(out_b), "dropout=0.2", "corrupt=true",
             *(f"train.{k}={v}" for k, v in COMMON.items()), *(f"train.ema.{k}={v}" for k, v in EMA.items())],
            env={**os.environ, "TOY_HANG_AFTER": str(KILL_AFTER)}, stdout=logf, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with one_thread():
            summary_a, model_a = run(toy_config(tmp_path / "a", ema=EmaConfig(**EMA), **COMMON), dropout=0.2,
                                     corrupt=True)
        _wait_for_kill_point(proc, out_b, log)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and its DataLoader workers
        proc.wait()
    assert proc.returncode == -signal.SIGKILL

    ckpt = load_checkpoint(out_b / "checkpoints" / "last.pt")
    assert (ckpt["step"], ckpt["epoch"], ckpt["batches_done"]) == (8, 1, 2)  # mid-epoch
    assert "ema" in ckpt  # the EMA of step 8, written at step 9 (before that step's update)
    assert max(e["step"] for e in read_metrics(out_b / "metrics.jsonl")) == KILL_AFTER

    with one_thread():
        summary_b, model_b = run(toy_config(out_b, resume=True, ema=EmaConfig(**EMA), **COMMON), dropout=0.2,
                                 corrupt=True)

    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    for k in state_a:
        assert torch.equal(state_a[k], state_b[k]), k
    assert summary_a["steps"] == summary_b["steps"] == 12
    ema_a, ema_b = (load_checkpoint(o / "checkpoints" / "last.pt")["ema"] for o in (tmp_path / "a", out_b))
    assert ema_a.keys() == state_a.keys() == ema_b.keys()
    for k in ema_a:
        assert torch.equal(ema_a[k], ema_b[k]), k
    assert not torch.equal(ema_a["head.weight"], state_a["head.weight"])  # the EMA is not the model

    events_a = read_metrics(tmp_path / "a" / "metrics.jsonl")
    events_b = read_metrics(out_b / "metrics.jsonl")
    train_steps = [e["step"] for e in events_b if "loss" in e]
    assert train_steps == list(range(1, 13))  # no duplicated or missing step after the resume
    assert [e["step"] for e in events_b if "val/acc" in e] == [6, 12]
    assert _without_throughput(events_b) == _without_throughput(events_a)  # same losses, lrs, metrics
    assert [e["step"] for e in events_b if "val_ema/acc" in e] == [6, 12]

    for s in (summary_a, summary_b):
        assert s["skipped_inputs"] == 8  # 4 corrupt indices of 48, 2 epochs
    assert summary_b["best_metric"] == summary_a["best_metric"]
    assert summary_b["final_metrics"] == summary_a["final_metrics"]
    assert summary_b["final_metrics_ema"] == summary_a["final_metrics_ema"]
