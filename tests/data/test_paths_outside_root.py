"""Dataset entries with ``..`` that lead out of the data root are read, with one warning per file (absolute
paths are the documented way to point outside the root)."""

from __future__ import annotations

import json
import logging

import nibabel as nib
import numpy as np

from spatiotemporal.data.labels_csv import read_labels_csv, read_multilabel_csv
from spatiotemporal.data.paths import leaves_root
from spatiotemporal.data.volume.datalist import load_volume_datalist


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_leaves_root():
    assert leaves_root("../a.mp4", "/data/k400") and leaves_root("x/../../a.mp4", "/data/k400")
    assert not leaves_root("x/../a.mp4", "/data/k400") and not leaves_root("/elsewhere/a.mp4", "/data/k400")
    assert not leaves_root("..a.mp4", "/data/k400")


def test_a_labels_csv_leaving_the_root_is_read_with_one_warning(tmp_path, caplog):
    root = tmp_path / "k400"
    root.mkdir()
    csv = root / "train.csv"
    csv.write_text(f"a.mp4 0\n../other/b.mp4 1\nsub/../c.mp4 0\n{tmp_path / 'abs.mp4'} 1\n../d.mp4 0\n")
    with caplog.at_level(logging.WARNING, "spatiotemporal"):
        samples, _ = read_labels_csv(csv, root, ["x", "y"])
        read_labels_csv(csv, root, ["x", "y"])  # read again (class names, a second dataset): no second warning
    assert [p for p, _ in samples][1] == root / "../other/b.mp4"  # still read
    assert _warnings(caplog) == [f"{csv}: 2 relative path(s) lead out of the data root {root} with '..' (the "
                                 "first: line 2, ../other/b.mp4); they are read, but only absolute paths are meant "
                                 "to point outside the root"]
    multi = root / "multi.csv"
    multi.write_text("a.mp4 0;1\n")
    caplog.clear()
    read_multilabel_csv(multi, root)
    assert _warnings(caplog) == []


def test_a_dataset_json_leaving_the_root_is_read_with_one_warning(tmp_path, caplog):
    root, other = tmp_path / "btcv", tmp_path / "shared"
    root.mkdir(), other.mkdir()
    img = nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4))
    for name in ("a.nii.gz", "b.nii.gz"):
        nib.save(img, str(root / name))
    nib.save(img, str(other / "c.nii.gz"))
    (root / "dataset_0.json").write_text(json.dumps({
        "labels": {"0": "background", "1": "spleen"}, "training": [{"image": "a.nii.gz", "label": "b.nii.gz"}],
        "validation": [{"image": "a.nii.gz", "label": "../shared/c.nii.gz"}]}))
    with caplog.at_level(logging.WARNING, "spatiotemporal"):
        dl = load_volume_datalist(root)
        load_volume_datalist(root)
    assert dl.validation[0]["label"].endswith("c.nii.gz")
    assert _warnings(caplog) == [
        f"{root / 'dataset_0.json'}: 1 relative path(s) lead out of the data root {root} with '..' (the first: "
        "validation[0].label, ../shared/c.nii.gz); they are read, but only absolute paths are meant to point "
        "outside the root"]
