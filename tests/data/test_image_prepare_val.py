"""data_recipes/imagenet/prepare_imagenet_val.py on a tiny fake ILSVRC-2012 validation folder."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

SCRIPT = Path(__file__).resolve().parents[2] / "data_recipes" / "imagenet" / "prepare_imagenet_val.py"
_spec = importlib.util.spec_from_file_location("prepare_imagenet_val", SCRIPT)
prep = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = prep  # dataclasses look the module up
_spec.loader.exec_module(prep)

WNIDS = ["n01440764", "n01443537", "n02119789"]


def _name(i: int) -> str:
    return f"ILSVRC2012_val_{i:08d}"


def _fake_val(tmp_path: Path, labels: list[int], skip: set[int] = frozenset(), broken: set[int] = frozenset()):
    """val/ with ILSVRC2012_val_<i>.JPEG for i = 1..len(labels) (minus ``skip``); ``broken`` are truncated."""
    val = tmp_path / "val"
    val.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, len(labels) + 1):
        if i in skip:
            continue
        path = val / f"{_name(i)}.JPEG"
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(path)
        if i in broken:
            path.write_bytes(path.read_bytes()[:60])
    return val


LABELS = [0, 2, 1, 0, 2, 1]


def test_two_column_list_moves_images_and_reports_missing_broken_unlisted(tmp_path):
    val = _fake_val(tmp_path, LABELS, skip={3}, broken={5})
    Image.new("RGB", (4, 4)).save(val / "stray.JPEG")
    gt = tmp_path / "val_list.txt"
    gt.write_text("".join(f"{_name(i)}.JPEG {WNIDS[c]}\n" for i, c in enumerate(LABELS, 1)))
    rep = prep.prepare_val(val, prep.read_ground_truth(gt))
    assert (rep.moved, rep.missing, rep.broken, rep.unlisted) == (4, [_name(3)], [f"{_name(5)}.JPEG"], ["stray.JPEG"])
    for i, c in enumerate(LABELS, 1):
        if i not in (3, 5):
            assert (val / WNIDS[c] / f"{_name(i)}.JPEG").is_file()
    assert (val / f"{_name(5)}.JPEG").is_file()  # broken file left in place
    again = prep.prepare_val(val, prep.read_ground_truth(gt))  # re-running is safe
    assert (again.moved, again.already, again.missing) == (0, 4, [_name(3)])


def test_kaggle_loc_solution_csv_and_command_line(tmp_path):
    val = _fake_val(tmp_path, LABELS)
    gt = tmp_path / "LOC_val_solution.csv"
    rows = [f"{_name(i)},{WNIDS[c]} 1 2 30 40 {WNIDS[c]} 5 6 7 8" for i, c in enumerate(LABELS, 1)]
    gt.write_text("ImageId,PredictionString\n" + "\n".join(rows[::-1]) + "\n")
    dry = subprocess.run([sys.executable, str(SCRIPT), str(val), str(gt), "--dry-run"], capture_output=True,
                         text=True)
    assert dry.returncode == 0 and "moved 6" in dry.stdout and not any(p.is_dir() for p in val.iterdir())
    res = subprocess.run([sys.executable, str(SCRIPT), str(val), str(gt)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert sorted(p.name for p in val.iterdir()) == sorted(set(WNIDS))
    assert sorted(len(list((val / w).iterdir())) for w in WNIDS) == [2, 2, 2]
    (val / WNIDS[0] / f"{_name(1)}.JPEG").unlink()
    missing = subprocess.run([sys.executable, str(SCRIPT), str(val), str(gt)], capture_output=True, text=True)
    assert missing.returncode == 1 and f"missing: {_name(1)}" in missing.stdout


def test_devkit_ground_truth_with_meta_mat(tmp_path):
    # meta.mat as in ILSVRC2012_devkit_t12/data: synsets (ID, WNID, words, gloss, num_children, ...),
    # IDs that do not follow the sorted-wnid order, plus a non-leaf synset.
    dt = [("ILSVRC2012_ID", "O"), ("WNID", "O"), ("words", "O"), ("gloss", "O"), ("num_children", "O")]
    synsets = np.array([(1, WNIDS[2], "kit fox", "", 0), (2, WNIDS[0], "tench", "", 0),
                        (3, WNIDS[1], "goldfish", "", 0), (1001, "n00001740", "entity", "", 3)], dtype=dt)
    devkit = tmp_path / "ILSVRC2012_devkit_t12"
    (devkit / "data").mkdir(parents=True)
    scipy.io.savemat(devkit / "data" / "meta.mat", {"synsets": synsets})
    ids = {WNIDS[2]: 1, WNIDS[0]: 2, WNIDS[1]: 3}
    gt = devkit / "data" / "ILSVRC2012_validation_ground_truth.txt"
    gt.write_text("".join(f"{ids[WNIDS[c]]}\n" for c in LABELS))
    with pytest.raises(ValueError, match="--devkit"):
        prep.read_ground_truth(gt)
    mapping = prep.read_ground_truth(gt, devkit)
    assert mapping == {_name(i): WNIDS[c] for i, c in enumerate(LABELS, 1)}
    val = _fake_val(tmp_path, LABELS)
    assert prep.prepare_val(val, mapping).moved == 6
    assert (val / WNIDS[2] / f"{_name(2)}.JPEG").is_file()


@pytest.mark.parametrize("text, line", [("a.JPEG n1\nb.JPEG\n", 2), ("a.JPEG n1\n7\n", 2), ("a.JPEG ../x\n", 1)])
def test_malformed_ground_truth_names_file_and_line(tmp_path, text, line):
    gt = tmp_path / "gt.txt"
    gt.write_text(text)
    with pytest.raises(ValueError) as e:
        prep.read_ground_truth(gt)
    assert f"{gt}:{line}" in str(e.value)
