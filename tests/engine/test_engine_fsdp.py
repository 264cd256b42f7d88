"""train.parallel=fsdp (FSDP2) under torchrun with two CPU (gloo) ranks: the same weights as one process, an
evaluation over every validation sample, full-state checkpoints written by rank 0, exact resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from engine_toy import one_thread, run, toy_config
from test_engine_ddp import _free_port

from spatiotemporal.engine import read_metrics

TOY = Path(__file__).with_name("engine_toy.py")


def _torchrun(out: Path, *overrides: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(TOY), str(out),
           "train.parallel=fsdp", "blocks=2", "train.batch_size=4", *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(proc: subprocess.Popen) -> str:
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    return log


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]


def test_fsdp_two_ranks_match_single_process(tmp_path):
    proc = _torchrun(tmp_path / "fsdp", "train.num_workers=0")
    with one_thread():  # the single-process reference (global batch 8) runs while torchrun starts
        ref_summary, ref_model = run(toy_config(tmp_path / "ref", batch_size=8), blocks=2)
    _wait(proc)
    state, ckpt = _weights(tmp_path / "fsdp"), torch.load(tmp_path / "fsdp" / "checkpoints" / "last.pt",
                                                           weights_only=True)
    assert ckpt["parallel"] == "fsdp" and ckpt["world_size"] == 2
    assert sorted(state) == sorted(ref_model.state_dict())  # full, unsharded tensors under the model's names
    for k, v in ref_model.state_dict().items():
        torch.testing.assert_close(state[k], v, atol=1e-5, rtol=0, msg=k)
    assert set(ckpt["optimizer"]["state"]) == {n for n, _ in ref_model.named_parameters()}

    summary = json.loads((tmp_path / "fsdp" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == ref_summary["steps"] == 12
    assert summary["final_metrics"]["count"] == 20  # each rank evaluated its own part with the gathered model
    assert abs(summary["final_metrics"]["loss"] - ref_summary["final_metrics"]["loss"]) < 1e-5
    fsdp_loss = [e["loss"] for e in read_metrics(tmp_path / "fsdp" / "metrics.jsonl") if "loss" in e]
    ref_loss = [e["loss"] for e in read_metrics(tmp_path / "ref" / "metrics.jsonl") if "loss" in e]
    torch.testing.assert_close(torch.tensor(fsdp_loss), torch.tensor(ref_loss), atol=1e-5, rtol=0)


@pytest.mark.slow
def test_fsdp_resume_is_exact_and_stays_in_its_mode(tmp_path):
    """Stopped mid-epoch with accumulation and clipping, resumed: bit-identical to one uninterrupted run."""
    common = ("train.accum_steps=2", "train.clip_grad=0.5", "train.checkpoint_every=1")
    whole = _torchrun(tmp_path / "whole", *common)
    _wait(_torchrun(tmp_path / "cut", *common, "train.max_steps=4"))
    _wait(whole)
    _wait(_torchrun(tmp_path / "cut", *common, "train.resume=true"))
    resumed, ref = _weights(tmp_path / "cut"), _weights(tmp_path / "whole")
    for k, v in ref.items():
        torch.testing.assert_close(resumed[k], v, atol=0, rtol=0, msg=k)
    # a DDP run cannot take over FSDP's optimiser state (keyed by parameter name)
    with one_thread(), pytest.raises(ValueError, match="written with train.parallel=fsdp"):
        run(toy_config(tmp_path / "cut", resume=True, epochs=3), blocks=2)


def test_fsdp_in_one_process_trains_unsharded_with_its_checkpoint_layout(tmp_path):
    with one_thread():
        _, ddp = run(toy_config(tmp_path / "ddp", epochs=1), blocks=2)
        run(toy_config(tmp_path / "fsdp", epochs=1, max_steps=4, parallel="fsdp"), blocks=2)
        _, fsdp = run(toy_config(tmp_path / "fsdp", epochs=1, resume=True, parallel="fsdp"), blocks=2)
    ckpt = torch.load(tmp_path / "fsdp" / "checkpoints" / "last.pt", weights_only=True)
    assert ckpt["parallel"] == "fsdp" and set(ckpt["optimizer"]["state"]) == {n for n, _ in fsdp.named_parameters()}
    for (k, a), (_, b) in zip(ddp.state_dict().items(), fsdp.state_dict().items()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)
