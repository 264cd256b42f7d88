"""Trainer loop: gradient accumulation, atomic / safe checkpoints, in-process resume, run-dir guards."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from engine_toy import one_thread, run, toy_config

from spatiotemporal.engine import atomic_torch_save, get_rng_state, read_metrics, set_rng_state
from spatiotemporal.utils import atomic


def _assert_close_models(a, b, atol):
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(va, vb, atol=atol, rtol=0, msg=k)


def test_accumulation_equals_larger_batch(tmp_path):
    with one_thread():
        big_s, big = run(toy_config(tmp_path / "b8", batch_size=8, epochs=1))
        acc_s, acc = run(toy_config(tmp_path / "b4x2", batch_size=4, accum_steps=2, epochs=1))
        # 40 samples: batch 4 x accum 3 gives groups of 3, 3, 3 and 1 micro-batches (the short last group
        # averages over its own micro-batches) == batch 12 without drop_last (12, 12, 12, 4)
        short_s, short = run(toy_config(tmp_path / "b4x3", batch_size=4, accum_steps=3, epochs=1), n_train=40)
        b12_s, b12 = run(toy_config(tmp_path / "b12", batch_size=12, drop_last=False, epochs=1), n_train=40)
    assert big_s["steps"] == acc_s["steps"] == 6 and short_s["steps"] == b12_s["steps"] == 4
    _assert_close_models(big, acc, atol=1e-6)
    _assert_close_models(short, b12, atol=1e-6)
    losses = [[e["loss"] for e in read_metrics(tmp_path / d / "metrics.jsonl") if "loss" in e]
              for d in ("b8", "b4x2")]
    torch.testing.assert_close(torch.tensor(losses[0]), torch.tensor(losses[1]), atol=1e-6, rtol=0)


def test_in_process_resume_and_worker_count_independence(tmp_path):
    """Stop at max_steps mid-epoch, resume to the end: identical to one run. In-process loading
    (num_workers=0, where seed_item reseeds the global RNGs) leaves the main process's dropout RNG
    alone, so the result is also identical to loading in a worker process."""
    with one_thread():
        _, full = run(toy_config(tmp_path / "full"), dropout=0.3)
        _, worker = run(toy_config(tmp_path / "worker", num_workers=1), dropout=0.3)
        first, _ = run(toy_config(tmp_path / "split", max_steps=4), dropout=0.3)
        assert first["steps"] == 4 and first["epochs"] == pytest.approx(4 / 6)
        second, resumed = run(toy_config(tmp_path / "split", resume=True), dropout=0.3)
    assert second["steps"] == 12
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k
        assert torch.equal(v, worker.state_dict()[k]), k
    # resuming a finished run trains nothing and logs nothing twice
    before = (tmp_path / "split" / "metrics.jsonl").read_text()
    with one_thread():
        again, _ = run(toy_config(tmp_path / "split", resume=True), dropout=0.3)
    assert again["steps"] == 12 and (tmp_path / "split" / "metrics.jsonl").read_text() == before


def test_checkpoint_is_weights_only_and_complete(tmp_path):
    with one_thread():
        summary, model = run(toy_config(tmp_path / "r", epochs=1, checkpoint_every=2))
    ckpt = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "step", "epoch", "batches_done", "best",
                "rank_states", "config"):
        assert key in ckpt, key
    assert ckpt["step"] == 6 and ckpt["epoch"] == 1 and ckpt["batches_done"] == 0
    assert ckpt["scheduler"]["last_step"] == 6 and ckpt["optimizer"]["state"]  # AdamW moments
    for k, v in model.state_dict().items():
        assert torch.equal(ckpt["model"][k], v)
    best = torch.load(tmp_path / "r" / "checkpoints" / "best.pt", weights_only=True)
    assert best["best"]["value"] == summary["best_metric"]
    # RNG states survive a weights_only round trip and restore every generator
    state = get_rng_state()
    atomic_torch_save(state, tmp_path / "rng.pt")
    draws = (random.random(), np.random.rand(), torch.rand(3))
    set_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True))
    again = (random.random(), np.random.rand(), torch.rand(3))
    assert draws[0] == again[0] and draws[1] == again[1] and torch.equal(draws[2], again[2])


@pytest.mark.parametrize("fail_at", ["replace", "write"])
def test_failed_checkpoint_write_keeps_previous_last(tmp_path, monkeypatch, fail_at):
    out = tmp_path / "r"
    with one_thread():
        run(toy_config(out, epochs=1, max_steps=2))
    last = out / "checkpoints" / "last.pt"
    good = last.read_bytes()
    if fail_at == "replace":  # dies after the temp file was fully written
        real_replace = atomic.os.replace

        def replace(src, dst):
            if str(dst).endswith("last.pt"):
                raise OSError("simulated crash before rename")
            return real_replace(src, dst)

        monkeypatch.setattr(atomic.os, "replace", replace)
    else:  # dies in the middle of serialising
        def save(obj, f):
            f.write(b"PK\x03\x04 partial")
            raise OSError("simulated crash while writing")

        monkeypatch.setattr(atomic.torch, "save", save)
    with one_thread(), pytest.raises(OSError, match="simulated crash"):
        run(toy_config(out, epochs=1, resume=True, checkpoint_every=1))
    assert last.read_bytes() == good
    assert torch.load(last, weights_only=True)["step"] == 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["best.pt", "last.pt"]  # no temp files left


def test_existing_run_needs_resume(tmp_path):
    with one_thread():
        run(toy_config(tmp_path / "r", epochs=1, max_steps=1))
        with pytest.raises(FileExistsError, match="resume=true"):
            run(toy_config(tmp_path / "r", epochs=1))


def test_bf16_autocast_and_grad_clipping(tmp_path):
    with one_thread():
        summary, _ = run(toy_config(tmp_path / "r", epochs=1, amp="bf16", clip_grad=0.5))
    events = [e for e in read_metrics(tmp_path / "r" / "metrics.jsonl") if "loss" in e]
    assert len(events) == 6 and all(e["grad_norm"] > 0 and np.isfinite(e["loss"]) for e in events)
    assert summary["final_metrics"]["count"] == 20
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        run(toy_config(tmp_path / "fp16", epochs=1, amp="fp16"))
