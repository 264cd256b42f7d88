"""Run-level cases of docs/reliability.md (issue 24): a run owns its folder, `pretrain --init`, inference options,
HD95 of an empty prediction, FSDP without torchrun, a full disk, dataset paths outside the root."""

from __future__ import annotations

import errno
import logging
import os
import signal

import pytest
import torch
from testing_utils import hold_lock_in_child, one_line

from spatiotemporal.cli.main import error_line, main
from spatiotemporal.data.video.synthetic import generate_builtin_video_dataset
from spatiotemporal.engine.checkpoint import load_checkpoint, save_checkpoint
from spatiotemporal.engine.distributed import DistInfo
from spatiotemporal.engine.parallel import parallel_mode
from spatiotemporal.models import create_model, load_pretrained, save_pretrained
from spatiotemporal.utils.atomic import DiskFullError, mount_point
from spatiotemporal.utils.run_lock import LOCK_NAME

pytestmark = pytest.mark.usefixtures("module_cache")

TINY = ["--max-steps", "1", "--epochs", "1", "--workers", "0", "--batch-size", "2", "train.eval_batch_size=250",
        "train.tensorboard=false"]


def test_a_run_owns_its_folder_a_second_one_stops_and_a_killed_ones_lock_is_taken_over(tmp_path, capsys, caplog):
    """Also: ``pretrain --init`` reads the file (the encoder starts from it; a missing one is refused)."""
    out = tmp_path / "run"
    holder, conn = hold_lock_in_child(out)  # the first run, writing into --out
    busy = f"{out} is in use by another run (pid {holder.pid} on {os.uname().nodename}: spatio train since "
    for argv in (["train", "vit", "--out", out, *TINY, "model.overrides.depth=1"],
                 ["pretrain", "videomae", "--out", out, *TINY],
                 ["embed", "--model", "vit_tiny_builtin", "--out", out, "--no-progress"]):
        msg = one_line(capsys, argv)
        assert msg.startswith(busy) and msg.endswith("; wait for it to end or choose another --out"), msg
    assert [p.name for p in out.iterdir()] == [LOCK_NAME]  # the second runs wrote nothing
    os.kill(holder.pid, signal.SIGKILL)  # the first run dies without releasing its lock
    holder.join(10)

    videos = generate_builtin_video_dataset(tmp_path / "videos", {"train": 2, "val": 1})  # a tiny Kinetics layout
    pretrain = ["pretrain", "videomae", "--config", "videomae_tiny_mae_builtin", "--data", "kinetics", "--data-root",
                videos, "--out", out, *TINY, "model.overrides.depth=1", "--init"]
    assert one_line(capsys, [*pretrain, tmp_path / "none.pt"]) == f"checkpoint not found: {tmp_path / 'none.pt'}"
    torch.manual_seed(123)
    init = create_model("videomae_tiny", mixer="joint", patch_size=8, tubelet_size=2, embed_dim=128, depth=1,
                        num_heads=4, img_size=32, num_frames=8, num_classes=0)
    save_pretrained(init, tmp_path / "enc.safetensors")
    with caplog.at_level(logging.WARNING, "spatiotemporal"):
        assert main([str(a) for a in [*pretrain, tmp_path / "enc.safetensors"]]) == 0
    took = [r.getMessage() for r in caplog.records if "took over the lock" in r.getMessage()]
    assert len(took) == 1 and took[0].startswith(f"{out}: took over the lock of a run that ended without "
                                                 f"releasing it (pid {holder.pid} on "), took
    assert (out / "checkpoints" / "last.pt").is_file() and not (out / LOCK_NAME).exists()
    got = load_pretrained(out / "encoder.safetensors").state_dict()  # one step at the warm-up's lr 0
    for k, v in init.state_dict().items():
        torch.testing.assert_close(got[k], v, atol=1e-4, rtol=0, msg=k)


class _FullDisk:
    """A file object whose disk fills after ``room`` bytes (``OSError(ENOSPC)``, as the kernel reports it)."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, b):
        if len(b) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.room -= len(b)
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_full_disk_during_a_checkpoint_write_is_one_line_and_keeps_the_last_good_one(tmp_path, monkeypatch):
    ckdir = tmp_path / "run" / "checkpoints"
    save_checkpoint({"model": {"w": torch.ones(1000)}, "step": 1}, ckdir / "last.pt")
    good = (ckdir / "last.pt").read_bytes()
    real = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", *a, **k: _FullDisk(real(fd, mode, *a, **k), 2000)
                        if "w" in mode else real(fd, mode, *a, **k))
    for name in ("last.pt", "best.pt"):
        with pytest.raises(DiskFullError) as e:  # torch's writer: RuntimeError("... unexpected pos ...")
            save_checkpoint({"model": {"w": torch.zeros(4000)}, "step": 2}, ckdir / name)
        assert error_line(e.value) == (
            f"no space left on {mount_point(ckdir)} while writing {ckdir / name}; the last good checkpoint is "
            f"{ckdir / 'last.pt'} (kept as it was): free space, then continue with --resume")
        assert e.value.errno == errno.ENOSPC and isinstance(e.value, OSError)
    monkeypatch.undo()
    assert (ckdir / "last.pt").read_bytes() == good and sorted(p.name for p in ckdir.iterdir()) == ["last.pt"]
    assert load_checkpoint(ckdir / "last.pt")["step"] == 1


def test_a_mask_ratio_that_masks_nothing_is_refused_up_front(tmp_path, capsys):
    base = ["pretrain", "videomae", "--out", tmp_path / "run", *TINY]
    assert one_line(capsys, [*base, "pretrain.mask_ratio=0"]) == (
        "section 'pretrain': pretrain.mask_ratio must be in (0, 1) (VideoMAE: 0.9), got 0.0")
    assert one_line(capsys, [*base, "pretrain.mask_ratio=0.01"]) == (  # was "training diverged ... lower the lr"
        "pretrain.mask_ratio=0.01 masks none of the 16 tube positions of the 4x4 grid; expected more than 0.0312 "
        "(VideoMAE: 0.9)")
    assert not (tmp_path / "run").exists()


def test_fsdp_without_torchrun_says_it_trains_one_plain_process(caplog):
    info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device("cpu"), initialized_here=False)
    with caplog.at_level(logging.WARNING, "spatiotemporal"):
        assert parallel_mode("fsdp", info).name == "fsdp"
        assert parallel_mode("ddp", info).name == "ddp"  # a single process is what ddp means there: no warning
    assert [r.getMessage() for r in caplog.records] == [
        "train.parallel=fsdp in a single process (not started by torchrun): nothing is sharded, the run trains as "
        "one plain process; start it with torchrun --nproc_per_node N to shard"]


def test_inference_options_are_checked_when_the_recipe_is_read(tmp_path, capsys):
    ckpt = save_pretrained(create_model("unetr_tiny", num_layers=2), tmp_path / "unetr.safetensors")
    ct = tmp_path / "ct.nii.gz"
    ct.write_bytes(b"")  # never opened: the recipe is refused first
    expected = ("section 'data': overlap (--overlap) must be in [0, 1) (the fraction of a window its neighbour "
                "covers), got 1.0")  # was MONAI's traceback after the model and the data were loaded
    assert one_line(capsys, ["predict", ct, "--checkpoint", ckpt, "--overlap", "1.0"]) == expected
    assert one_line(capsys, ["eval", "--checkpoint", ckpt, "--overlap", "1.0"]) == expected
    assert one_line(capsys, ["train", "unetr", "--out", tmp_path / "run", "data.inference.sigma_scale=-0.1"]) == (
        "section 'data.inference': sigma_scale must be > 0 (the Gaussian's sigma as a fraction of the window), "
        "got -0.1")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ct.nii.gz", "unetr.json", "unetr.safetensors"]
