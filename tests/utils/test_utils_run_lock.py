"""A run owns its folder: ``utils.run_lock`` (an flock on ``FOLDER/.spatio.lock``)."""

from __future__ import annotations

import json
import logging
import os
import signal

import pytest
from testing_utils import hold_lock_in_child

from spatiotemporal.utils.run_lock import LOCK_NAME, RunFolderBusy, run_lock


def test_a_second_holder_is_refused_naming_the_first_and_the_folder_is_cleaned_up(tmp_path):
    folder = tmp_path / "a" / "run"
    with run_lock(folder, "train") as f:
        assert f == folder and (folder / LOCK_NAME).is_file()
        record = json.loads((folder / LOCK_NAME).read_text())
        assert record["pid"] == os.getpid() and record["command"] == "train" and "/" not in record["host"]
        with pytest.raises(RunFolderBusy) as e, run_lock(folder, "embed"):  # another open file: refused too
            pass
        assert str(e.value).startswith(f"{folder} is in use by another run (pid {os.getpid()} on ")
        assert "spatio train since" in str(e.value) and str(e.value).endswith("or choose another --out")
        assert (folder / LOCK_NAME).is_file()  # the refused one took nothing away
    assert not (tmp_path / "a").exists()  # created for nothing: removed again
    kept = tmp_path / "kept"
    with run_lock(kept, "train"):
        (kept / "config.yaml").write_text("x")
    assert sorted(p.name for p in kept.iterdir()) == ["config.yaml"]


def test_a_killed_holders_lock_is_taken_over_with_one_warning(tmp_path, caplog):
    folder = tmp_path / "run"
    proc, conn = hold_lock_in_child(folder)
    with pytest.raises(RunFolderBusy, match=f"pid {proc.pid} on "):
        with run_lock(folder, "train"):
            pass
    os.kill(proc.pid, signal.SIGKILL)
    proc.join(10)
    assert (folder / LOCK_NAME).is_file()  # the dead run left its record
    with caplog.at_level(logging.WARNING, "spatiotemporal"), run_lock(folder, "train"):
        pass
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and lines[0].startswith(f"{folder}: took over the lock of a run that ended without "
                                                   f"releasing it (pid {proc.pid} on "), lines
    assert not folder.exists() or not (folder / LOCK_NAME).exists()


def test_other_torchrun_ranks_take_no_lock_and_a_file_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    monkeypatch.setenv("RANK", "1")
    with run_lock(folder, "train"):
        assert not (folder / LOCK_NAME).exists()
    monkeypatch.delenv("RANK")
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    with pytest.raises(ValueError, match=f"^{blocker}: is a file; expected a run folder"), run_lock(blocker, "embed"):
        pass
