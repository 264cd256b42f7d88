"""What a run tells: skip counts, progress, training-side metrics and summary, the run plan, worker cap,
and what each checkpoint holds."""

from __future__ import annotations

import json
import logging
import os
import sys
import warnings

import pytest
import torch
from engine_toy import one_thread, run, toy_config
from torch.utils.data import Dataset

from spatiotemporal.engine import Trainer, read_metrics
from spatiotemporal.engine.loading import SkipCounter
from spatiotemporal.pipelines.classification import ClassificationTask


@pytest.fixture
def engine_log(caplog):
    caplog.set_level(logging.INFO, logger="spatiotemporal.engine")
    return caplog


def _messages(caplog, level=logging.INFO):
    return [r.getMessage() for r in caplog.records if r.name == "spatiotemporal.engine" and r.levelno >= level]


def test_skips_are_counted_per_split_as_occurrences_and_distinct_files(tmp_path):
    out = tmp_path / "r"
    with one_thread():
        summary, _ = run(toy_config(out, epochs=2), corrupt=True, val_corrupt=True)
    # 48 train items with 4 corrupt ones, read in 2 epochs; 20 val items with 2 corrupt ones, evaluated twice
    assert (summary["skipped_inputs"], summary["skipped_files"]) == (8, 4)
    assert (summary["val_skipped_inputs"], summary["val_skipped_files"]) == (4, 2)
    assert sorted(summary["val_skipped_examples"]) == sorted(["/data/clip_18.mp4", "/data/clip_5.mp4"] * 2)
    events = read_metrics(out / "metrics.jsonl")
    epochs = [e for e in events if "train/skipped" in e]
    assert [(e["train/skipped"], e["val/skipped"]) for e in epochs] == [(4, 2), (4, 2)]
    assert [e["skipped"] for e in events if "loss" in e][-1] == 8  # validation skips are not training skips


def test_progress_lines_off_a_terminal_include_each_epochs_last_step_and_evaluation(tmp_path, engine_log):
    out = tmp_path / "r"
    with one_thread():
        run(toy_config(out, epochs=2, log_every=4))  # 6 steps per epoch: every 4th step and each epoch's last
    assert [e["step"] for e in read_metrics(out / "metrics.jsonl") if "loss" in e] == [4, 6, 8, 12]
    msgs = _messages(engine_log)
    for step in (4, 6, 8, 12):
        assert any(f"step {step}/12 loss " in m and "samples/s eta" in m for m in msgs), step
    for step in (6, 12):
        assert any(m.startswith(f"evaluating at step {step}: 20 validation samples") for m in msgs)
        assert any(m.startswith(f"eval at step {step} (") and "acc" in m for m in msgs)


def test_progress_bars_on_a_terminal_show_loss_throughput_and_evaluation(tmp_path, capsys, engine_log):
    with one_thread():
        run(toy_config(tmp_path / "r", epochs=2, log_every=4, progress="always"))
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err and "6/6" in err
    assert "loss=" in err and "samples/s=" in err and "lr=" in err
    assert "eval at step 6" in err and "eval at step 12" in err
    assert not any("step 4/12 loss" in m for m in _messages(engine_log))  # the bar replaces the lines


def test_metrics_and_summary_carry_the_training_side(tmp_path):
    out = tmp_path / "r"
    with one_thread():
        summary, _ = run(toy_config(out, epochs=2), corrupt=True)
    events = read_metrics(out / "metrics.jsonl")
    steps = [e for e in events if "loss" in e]
    assert len(steps) == 12 and all(e["throughput"] > 0 and e["lr"] > 0 for e in steps)
    per_epoch = [e for e in events if "train/loss" in e]
    assert [e["train/samples"] for e in per_epoch] == [44, 44]  # 48 minus 4 unreadable, per epoch
    for e, window in zip(per_epoch, (steps[:6], steps[6:])):
        assert e["train/loss"] == pytest.approx(sum(s["loss"] for s in window) / 6, rel=1e-12)
    assert summary["samples_seen"] == 88
    assert summary["train_loss_last"] == steps[-1]["loss"]
    assert summary["train_loss_mean"] == pytest.approx(sum(s["loss"] for s in steps) / 12, rel=1e-12)
    assert summary["throughput_mean"] > 0 and summary["throughput_unit"] == "samples/s"
    assert json.loads((out / "summary.json").read_text())["samples_seen"] == 88


def test_run_plan_line_and_warnings(tmp_path, engine_log):
    cfg = toy_config(tmp_path / "r", epochs=2, batch_size=4, accum_steps=5, max_steps=2)
    cfg.sched.warmup_steps = 5
    with one_thread():
        summary, _ = run(cfg)
    assert summary["steps"] == 2
    msgs = _messages(engine_log)
    assert any("effective global batch 20 (batch_size 4 x 1 rank(s) x accum_steps 5); 3 optimiser steps per "
               "epoch (12 batches from 48 samples per rank), 2 in total" in m for m in msgs)
    warns = _messages(engine_log, logging.WARNING)
    assert any("partial accumulation window: 2 of accum_steps 5 micro-batches" in m for m in warns)
    assert any("train.max_steps=2 stops the run after 0.67 of 2 epochs (the first epoch is not completed)" in m
               for m in warns)
    assert any("warm-up lasts 5 optimiser steps, longer than the run (2)" in m for m in warns)


def test_dataloader_workers_are_capped_at_the_available_cores(tmp_path, monkeypatch, engine_log):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    with one_thread(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        summary, _ = run(toy_config(tmp_path / "r", epochs=1, max_steps=2, num_workers=3))
    assert summary["steps"] == 2
    assert any("train.num_workers=3 capped at 1" in m for m in _messages(engine_log, logging.WARNING))
    assert not [w for w in caught if "worker processes in total" in str(w.message)]  # torch's own warning


class _Images(Dataset):
    def __init__(self, n: int) -> None:
        g = torch.Generator().manual_seed(n)
        self.x, self.y = torch.randn(n, 3, 32, 32, generator=g), torch.arange(n) % 4

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i):
        return {"image": self.x[i], "label": self.y[i]}


def test_best_checkpoint_holds_weights_and_task_state_only_and_loads_as_a_model(tmp_path):
    from spatiotemporal.models import build_model, load_pretrained, model_entry
    from spatiotemporal.models.checkpoint_io import model_spec

    entry = model_entry("vit_tiny_builtin")
    torch.manual_seed(0)
    model = build_model(entry.arch, {**entry.defaults, "depth": 1, "num_classes": 4})
    task = ClassificationTask("image", state={"model_spec": model_spec(model), "class_names": list("abcd")})
    cfg = toy_config(tmp_path / "r", epochs=1, batch_size=4)
    with one_thread():
        Trainer(model, task, _Images(8), _Images(4), cfg).fit()
    ckdir = tmp_path / "r" / "checkpoints"
    best = torch.load(ckdir / "best.pt", weights_only=True)
    last = torch.load(ckdir / "last.pt", weights_only=True)
    assert best["kind"] == "best" and last["kind"] == "last"
    for key in ("optimizer", "scheduler", "scaler", "rank_states"):
        assert key not in best and key in last, key
    assert best["task"]["class_names"] == list("abcd") and "config" not in best and "out" in last["config"]
    assert best["best"]["value"] == best["last_eval"]["top1"]
    assert (ckdir / "best.pt").stat().st_size < 0.5 * (ckdir / "last.pt").stat().st_size  # AdamW: 2 moments
    loaded = load_pretrained(ckdir / "best.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v), k


def test_progress_lines_also_come_by_time_between_logged_steps(tmp_path, engine_log):
    out = tmp_path / "r"
    with one_thread():
        run(toy_config(out, epochs=1, log_every=100, log_interval_s=1e-9))
    assert [e["step"] for e in read_metrics(out / "metrics.jsonl") if "loss" in e] == [6]  # events: log_every only
    msgs = _messages(engine_log)
    for step in range(1, 7):
        assert any(f"step {step}/6 loss " in m for m in msgs), step


def test_track_shows_a_bar_on_a_terminal_and_plain_lines_off_one(capsys, caplog, monkeypatch):
    from spatiotemporal.engine import track

    caplog.set_level(logging.INFO, logger="spatiotemporal.progress")
    assert list(track(range(4), "eval val", "cases", interval_s=0)) == [0, 1, 2, 3]
    lines = [r.getMessage() for r in caplog.records if r.name == "spatiotemporal.progress"]
    assert lines[0] == "eval val: 4 cases" and len(lines) == 5
    assert [ln.split(" (")[0] for ln in lines[1:]] == [f"eval val: {i}/4 cases" for i in range(1, 5)]
    caplog.clear()
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert list(track(range(3), "eval test", "batches")) == [0, 1, 2]
    err = capsys.readouterr().err  # tqdm: count, rate and ETA, cleared at the end (leave=False)
    assert "eval test:" in err and "0/3 [00:00<?, ?batches/s]" in err and not caplog.records


def test_skip_reasons_go_with_their_examples_through_a_checkpoint():
    """The collate's ``skip_reasons`` are kept for the example paths: the first example of an epoch is quoted with
    its reason (the epoch error and the empty-window warning); a checkpoint from before the reasons still loads."""
    skips = SkipCounter()
    batch = skips.pop_from({"x": torch.ones(1), "skipped": ["/d/f0", "/d/f1"],
                            "skip_reasons": ["frame folder without .jpg/.jpeg/.png images", ""]})
    assert set(batch) == {"x"}
    assert skips.describe_current() == "/d/f0 (frame folder without .jpg/.jpeg/.png images), /d/f1"
    skips.pop_from({"skipped": ["/d/f0", "/d/f2", "/d/f3"], "skip_reasons": ["found unreadable earlier", "", ""]})
    assert skips.describe_current() == "/d/f0 (frame folder without .jpg/.jpeg/.png images), /d/f1, /d/f0, ..."
    resumed = SkipCounter()
    resumed.load_state_dict(skips.state_dict())
    resumed.start_period()
    resumed.pop_from({"skipped": ["/d/f0"], "skip_reasons": ["found unreadable earlier"]})
    assert resumed.describe_current() == "/d/f0 (frame folder without .jpg/.jpeg/.png images)"  # the first reason
    old = {k: v for k, v in skips.state_dict().items() if k != "reasons"}
    before = SkipCounter()
    before.load_state_dict(old)
    assert before.describe_current() == "/d/f0, /d/f1, /d/f0, ..."
