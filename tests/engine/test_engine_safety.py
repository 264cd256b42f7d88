"""A run is never poisoned or silently wrong: each failure stops with one clear line and loses nothing."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
from engine_toy import build, one_thread, run, toy_config

from spatiotemporal.engine import (
    CheckpointError,
    NoUsableSamples,
    TrainingDiverged,
    load_checkpoint,
    read_metrics,
)


def _one_line(err: pytest.ExceptionInfo) -> str:
    msg = str(err.value)
    assert msg and "\n" not in msg
    return msg


def _all_finite(ckpt: dict) -> bool:
    tensors = list(ckpt["model"].values())
    tensors += [v for st in ckpt.get("optimizer", {}).get("state", {}).values() for v in st.values()]
    return all(torch.isfinite(t).all() for t in tensors if t.is_floating_point())


def test_epoch_without_a_usable_sample_is_an_error_and_takes_no_step(tmp_path):
    out = tmp_path / "r"
    ckdir = out / "checkpoints"
    with one_thread():
        trainer, _ = build(toy_config(tmp_path / "fresh", epochs=1), corrupt="all")
        with pytest.raises(NoUsableSamples) as err:
            trainer.fit()
    msg = _one_line(err)
    assert "epoch 1 had no usable training sample" in msg and "48 inputs were skipped" in msg
    assert "/data/clip_0.mp4" in msg or "/data/clip_" in msg
    assert not (tmp_path / "fresh" / "checkpoints").exists()  # no best.pt of a model trained on nothing

    # a good first epoch, then every input of the second one unreadable
    with one_thread():
        run(toy_config(out, epochs=1))
    last, best = (ckdir / "last.pt").read_bytes(), (ckdir / "best.pt").read_bytes()
    with one_thread():
        trainer, model = build(toy_config(out, epochs=2, resume=True), corrupt="all")
        with pytest.raises(NoUsableSamples, match="epoch 2 had no usable training sample"):
            trainer.fit()
    assert (ckdir / "last.pt").read_bytes() == last and (ckdir / "best.pt").read_bytes() == best
    saved = load_checkpoint(ckdir / "last.pt")["model"]
    for k, v in model.state_dict().items():  # AdamW never stepped on the empty windows (weight decay would move)
        assert torch.equal(v, saved[k]), k


def test_divergence_keeps_the_last_good_checkpoint_and_a_sane_resume_works(tmp_path):
    out = tmp_path / "r"
    last = out / "checkpoints" / "last.pt"
    cfg = toy_config(out, epochs=2, checkpoint_every=1, log_every=10)  # the loss is logged every 10 steps only
    cfg.optim.lr = 1e6
    with one_thread(), pytest.raises(TrainingDiverged) as err:
        run(cfg)
    msg = _one_line(err)
    good = load_checkpoint(last)
    assert _all_finite(good)
    assert f"{last} (step {good['step']})" in msg and "--resume" in msg and "train.resume=true" in msg
    assert "training diverged at step" in msg and "(epoch " in msg and "the training loss is nan" in msg
    failed_at = int(msg.split("training diverged at step ")[1].split()[0])
    assert 0 < good["step"] < failed_at
    with one_thread():
        summary, model = run(toy_config(out, epochs=2, checkpoint_every=1, log_every=10, resume=True))
    assert summary["steps"] == 12
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())
    assert _all_finite(load_checkpoint(last)) and _all_finite(load_checkpoint(out / "checkpoints" / "best.pt"))


def test_empty_validation_split_is_refused_before_training(tmp_path):
    with one_thread():
        trainer, _ = build(toy_config(tmp_path / "r", epochs=1), n_val=0)
        with pytest.raises(NoUsableSamples) as err:
            trainer.fit()
    assert "validation dataset is empty" in _one_line(err)
    assert not (tmp_path / "r").exists()


def test_evaluation_over_zero_samples_is_an_error_and_never_a_best(tmp_path):
    out = tmp_path / "r"
    with one_thread():
        trainer, _ = build(toy_config(out, epochs=2), val_corrupt="all")
        with pytest.raises(NoUsableSamples) as err:
            trainer.fit()
    msg = _one_line(err)
    assert "evaluation at step 6 had no usable sample: 20 validation inputs were skipped" in msg
    assert "best.pt was not" in msg and "--resume" in msg
    assert not (out / "checkpoints" / "best.pt").exists()
    assert load_checkpoint(out / "checkpoints" / "last.pt")["step"] == 6  # the epoch's training is kept
    # repaired validation data: the run continues from there
    with one_thread():
        summary, _ = run(toy_config(out, epochs=2, resume=True))
    assert summary["steps"] == 12 and summary["best_step"] == 12 and summary["final_metrics"]["num_samples"] == 20


class _Evil:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("damage", ["truncated", "pickle"])
def test_unreadable_last_checkpoint_names_the_file_and_the_readable_best(tmp_path, damage):
    out = tmp_path / "r"
    ckdir = out / "checkpoints"
    with one_thread():
        run(toy_config(out, epochs=1))
    last, best = ckdir / "last.pt", ckdir / "best.pt"
    best_bytes = best.read_bytes()
    marker = tmp_path / "code_ran"
    if damage == "truncated":
        last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    else:
        evil = _Evil()
        evil.marker = marker
        torch.save({"format": "spatiotemporal.engine/1", "model": evil}, last)  # runs os.system if unpickled
    with one_thread(), pytest.raises(CheckpointError) as err:
        run(toy_config(out, epochs=2, resume=True))
    msg = _one_line(err)
    assert msg.startswith(f"cannot resume: {last}: not a readable checkpoint")
    assert f"{best} is readable (step 6, epoch 1)" in msg and f"--init {best}" in msg and "copy it over" in msg
    assert not marker.exists()  # weights_only: the pickle's code never ran
    assert best.read_bytes() == best_bytes
    # the documented way out: best.pt copied over last.pt resumes from its step (fresh optimiser state)
    shutil.copyfile(best, last)
    with one_thread():
        summary, _ = run(toy_config(out, epochs=2, resume=True))
    assert summary["steps"] == 12 and summary["epochs"] == 2
    best.unlink()
    last.write_bytes(b"garbage")
    with one_thread(), pytest.raises(CheckpointError, match="there is no best.pt beside it"):
        run(toy_config(out, epochs=3, resume=True))


def test_existing_run_hint_names_the_cli_flag(tmp_path):
    with one_thread():
        run(toy_config(tmp_path / "r", epochs=1, max_steps=1))
        with pytest.raises(FileExistsError) as err:
            run(toy_config(tmp_path / "r", epochs=1))
    msg = _one_line(err)
    assert "--resume" in msg and "train.resume=true" in msg and "--out" in msg


def test_orphaned_temp_files_of_dead_writers_are_removed_at_start(tmp_path):
    out = tmp_path / "r"
    ckdir = out / "checkpoints"
    with one_thread():
        run(toy_config(out, epochs=1, max_steps=2))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    orphans = [ckdir / f".last.pt.tmp-{dead_pid}-{uuid.uuid4().hex[:8]}",  # utils.atomic's temp-file pattern
               out / f".metrics.jsonl.tmp-{dead_pid}-{uuid.uuid4().hex[:8]}"]
    live = ckdir / f".last.pt.tmp-{os.getppid()}-{uuid.uuid4().hex[:8]}"  # a writer that still runs
    other = ckdir / f"notes.{dead_pid}.tmp"  # not the atomic writer's pattern
    for p in (*orphans, live, other):
        p.write_bytes(b"partial")
    with one_thread():
        run(toy_config(out, epochs=1, resume=True))
    assert not any(p.exists() for p in orphans)
    assert live.exists() and other.exists()
    assert [e["step"] for e in read_metrics(out / "metrics.jsonl") if "loss" in e] == list(range(1, 7))


def test_ctrl_c_leaves_a_whole_checkpoint_names_it_and_the_run_resumes(tmp_path):
    """SIGINT to a training process (Ctrl-C): it stops with a line naming the checkpoint to resume from; last.pt
    is whole (no temp file beside it) and --resume finishes the run."""
    out, log = tmp_path / "r", tmp_path / "child.log"
    toy = Path(__file__).with_name("engine_toy.py")
    with open(log, "w") as logf:
        proc = subprocess.Popen([sys.executable, str(toy), str(out), "train.checkpoint_every=4", "train.num_workers=0"],
                                env={**os.environ, "TOY_HANG_AFTER": "10"}, stdout=logf, stderr=subprocess.STDOUT,
                                # a background job of a non-interactive shell inherits SIGINT ignored; Python then
                                # installs no KeyboardInterrupt handler, so give the child the default disposition
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline, metrics = time.time() + 180, out / "metrics.jsonl"
        while not metrics.exists() or 10 not in {e["step"] for e in read_metrics(metrics)}:
            assert proc.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=240)  # generous: a loaded CI machine
    finally:
        if proc.poll() is None:
            proc.kill()
    text = log.read_text()
    assert proc.returncode != 0 and "KeyboardInterrupt" in text
    last = out / "checkpoints" / "last.pt"
    assert re.search(rf"interrupted at step 10 \(epoch 1\.\d\d\); {re.escape(str(last))} \(step 8\) is whole: "
                     "continue from it with --resume", text), text[-2000:]
    assert load_checkpoint(last)["step"] == 8
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]  # no temp file
    with one_thread():
        summary, _ = run(toy_config(out, checkpoint_every=4, resume=True))
    assert summary["steps"] == 12


def test_ctrl_c_during_a_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    out = tmp_path / "r"
    with one_thread():
        run(toy_config(out, epochs=1))
    last, best = out / "checkpoints" / "last.pt", out / "checkpoints" / "best.pt"
    before = last.read_bytes(), best.read_bytes()
    real_save = torch.save

    def interrupted_save(obj, f, *args, **kwargs):
        f.write(b"partial")  # a write cut short by Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted_save)
    with one_thread(), pytest.raises(KeyboardInterrupt):
        run(toy_config(out, epochs=2, resume=True))
    monkeypatch.setattr(torch, "save", real_save)
    assert (last.read_bytes(), best.read_bytes()) == before
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]
