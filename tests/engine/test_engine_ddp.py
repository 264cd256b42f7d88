"""torchrun with two CPU (gloo) ranks equals one process with the same global batch, weight EMA included (each rank
keeps the EMA of its bare model); only rank 0 writes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
from engine_toy import one_thread, run, toy_config

from spatiotemporal.engine import EmaConfig, load_checkpoint, read_metrics

TOY = Path(__file__).with_name("engine_toy.py")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_torchrun_two_ranks_match_single_process(tmp_path):
    out, audit = tmp_path / "ddp", tmp_path / "audit"
    audit.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(TOY), str(out),
           "train.batch_size=4", "train.num_workers=1", "train.ema.decay=0.9"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOY_AUDIT_DIR": str(audit)}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with one_thread():  # the single-process reference (global batch 8) runs while torchrun starts
        ref_summary, ref_model = run(toy_config(tmp_path / "ref", batch_size=8, num_workers=1,
                                                ema=EmaConfig(decay=0.9)))
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log

    ddp_state = torch.load(out / "final_weights.pt", weights_only=True)
    for k, v in ref_model.state_dict().items():
        torch.testing.assert_close(ddp_state[k], v, atol=1e-5, rtol=0, msg=k)

    ddp_ema, ref_ema = (load_checkpoint(o / "checkpoints" / "last.pt")["ema"] for o in (out, tmp_path / "ref"))
    for k, v in ref_ema.items():
        torch.testing.assert_close(ddp_ema[k], v, atol=1e-5, rtol=0, msg=k)

    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == ref_summary["steps"] == 12
    assert summary["final_metrics"]["count"] == 20  # unpadded eval split: every val sample once
    assert abs(summary["final_metrics"]["loss"] - ref_summary["final_metrics"]["loss"]) < 1e-5
    assert summary["final_metrics_ema"]["count"] == 20  # both ranks evaluated their own EMA copy
    assert abs(summary["final_metrics_ema"]["loss"] - ref_summary["final_metrics_ema"]["loss"]) < 1e-5

    # train losses are reduced across ranks: they match the single-process run
    ddp_loss = [e["loss"] for e in read_metrics(out / "metrics.jsonl") if "loss" in e]
    ref_loss = [e["loss"] for e in read_metrics(tmp_path / "ref" / "metrics.jsonl") if "loss" in e]
    assert len(ddp_loss) == 12
    torch.testing.assert_close(torch.tensor(ddp_loss), torch.tensor(ref_loss), atol=1e-5, rtol=0)

    # only rank 0 wrote anything under the run directory
    writes = {r: json.loads((audit / f"writes_rank{r}.json").read_text()) for r in (0, 1)}
    assert writes[1] == []
    written = {Path(p).name for _, p in writes[0]}
    assert {"metrics.jsonl", "summary.json", "config.yaml", "last.pt", "best.pt"} <= written
    assert any(n.startswith(".last.pt.") for n in written)  # checkpoints went through a temp file
    assert sorted(p.name for p in out.iterdir()) == ["checkpoints", "config.yaml", "final_weights.pt",
                                                     "metrics.jsonl", "summary.json"]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
