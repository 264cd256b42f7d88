"""``spatio train --fold K --folds N`` (recorded in the run) and ensembles of checkpoints in ``spatio predict`` and
``spatio eval``, on one tiny UNETR run of the built-in CT phantoms (its ``best.pt`` and ``last.pt`` are two
models); the failures are one line."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from spatiotemporal.cli.main import main
from spatiotemporal.data.volume import (
    case_id,
    ensure_builtin_volume_dataset,
    fold_split,
    load_volume_datalist,
    write_datalist,
)
from spatiotemporal.models import load_pretrained, save_pretrained
from spatiotemporal.pipelines.ensemble import stored_fold

pytestmark = pytest.mark.usefixtures("module_cache")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Fold 3 of 16 of the phantoms' training list: one validation case."""
    out = tmp_path_factory.mktemp("folds") / "fold3"
    assert main(["train", "unetr", "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "2", "model.overrides.num_layers=2", "--fold", "3", "--folds", "16"]) == 0
    return out


@pytest.fixture(scope="module")
def other(run):
    """A second model of the same setup: the run's weights, perturbed, saved with the same spec."""
    model = load_pretrained(run / "checkpoints" / "best.pt")
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.05)
    return save_pretrained(model, run / "other.safetensors")


@pytest.fixture(scope="module")
def one_case():
    """``--data-file one_case.json``: the phantoms with one validation case (a fast ``spatio eval``)."""
    root = ensure_builtin_volume_dataset()
    dl = load_volume_datalist(root)
    rel = [{k: str(Path(v).relative_to(root)) for k, v in c.items()} for c in (dl.training[0], dl.validation[0])]
    write_datalist(root, rel[:1], rel[1:], dl.class_names, json_name="one_case.json")
    return "one_case.json"


@pytest.fixture(scope="module")
def ct():
    return sorted((ensure_builtin_volume_dataset() / "imagesTr").glob("*.nii.gz"))[0]


def one_line(capsys, argv) -> str:
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"spatio {argv[0]}: error: "), err
    return err


def test_the_fold_is_recorded_in_the_run_and_its_checkpoints(run):
    dl = load_volume_datalist(ensure_builtin_volume_dataset())
    _, val = fold_split(dl.training, folds=16, fold=3, seed=0)
    want = {"fold": 3, "folds": 16, "seed": 0, "validation_cases": [case_id(c) for c in val]}
    summary = json.loads((run / "summary.json").read_text())
    assert summary["fold"] == want and len(want["validation_cases"]) == 1
    assert summary["final_metrics"]["num_samples"] == 1  # validated on the fold, not the JSON's validation list
    assert stored_fold(run / "checkpoints" / "best.pt") == want == stored_fold(run / "checkpoints" / "last.pt")
    assert "/" not in json.dumps(want)


def test_an_ensemble_predicts_in_the_input_grid_and_of_one_model_with_itself_is_that_model(run, other, ct, tmp_path,
                                                                                           capsys):
    best = run / "checkpoints" / "best.pt"
    outs = {}
    for name, ckpts in (("ens", [best, other]), ("single", [best]), ("self", [best, best])):
        argv = ["predict", ct, *(a for c in ckpts for a in ("--checkpoint", c)), "--out", tmp_path / f"{name}.nii.gz",
                "--json"]
        capsys.readouterr()
        assert main([str(a) for a in argv]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result.get("models", 1) == len(ckpts)
        outs[name] = nib.load(tmp_path / f"{name}.nii.gz")
    src = nib.load(ct)
    for img in outs.values():
        assert img.shape == src.shape and np.allclose(img.affine, src.affine)
    assert np.array_equal(outs["self"].get_fdata(), outs["single"].get_fdata())


def test_eval_reports_each_fold_and_the_ensemble(run, other, one_case, tmp_path):
    best = run / "checkpoints" / "best.pt"
    out = tmp_path / "ens.json"
    assert main(["eval", "--checkpoint", str(best), "--checkpoint", str(other), "--data-file", one_case,
                 "--json", str(out)]) == 0
    m = json.loads(out.read_text())
    assert m["split"] == "validation" and [x["checkpoint"] for x in m["members"]] == [str(best), str(other)]
    first, second = m["members"]
    assert first["fold"]["fold"] == 3 and second["fold"] is None  # a safetensors export stores no fold
    assert all(0 <= x["mean_dice"] <= 1 and "dice_liver" in x for x in m["members"])
    assert 0 <= m["ensemble"]["mean_dice"] <= 1 and m["ensemble"]["num_samples"] == 1
    single = tmp_path / "one.json"
    assert main(["eval", "--checkpoint", str(best), "--data-file", one_case, "--json", str(single)]) == 0
    one = json.loads(single.read_text())
    assert one["fold"]["folds"] == 16 and one["mean_dice"] == pytest.approx(first["mean_dice"])
    oof = tmp_path / "oof.json"  # out of fold: the fold's own validation case, its config.yaml says which
    assert main(["eval", "--checkpoint", str(best), "--split", "fold", "--json", str(oof)]) == 0
    assert json.loads(oof.read_text())["split"] == "fold" and json.loads(oof.read_text())["num_samples"] == 1


def test_fold_and_ensemble_failures_are_one_line(run, ct, tmp_path, capsys):
    best = run / "checkpoints" / "best.pt"
    model = load_pretrained(best)
    names = ["background", "liver", "spleen", "kidney_l", "kidney_r", "pancreas"]
    renamed = save_pretrained(model, tmp_path / "renamed.safetensors", class_names=names)
    err = one_line(capsys, ["predict", ct, "--checkpoint", best, "--checkpoint", renamed])
    assert f"{best} and {renamed} cannot be ensembled: their class_names differ" in err
    prep = dict(model.pretrained_cfg["preprocessing"])
    prep["volume"] = {**prep["volume"], "a_min": -100.0}
    window = save_pretrained(model, tmp_path / "window.safetensors", preprocessing=prep)
    err = one_line(capsys, ["eval", "--checkpoint", best, "--checkpoint", window])
    assert "their preprocessing.volume.a_min differ (-175.0 vs -100.0)" in err
    train = ["train", "unetr", "--out", tmp_path / "bad", "--max-steps", "1", "model.overrides.num_layers=2"]
    assert "data.folds (--folds) is 99, but" in one_line(capsys, [*train, "--fold", "0", "--folds", "99"])
    assert "fold (--fold) must be in [0, 3]" in one_line(capsys, [*train, "--fold", "4", "--folds", "4"])
    assert "folds (--folds) must be 0" in one_line(capsys, [*train, "--folds", "1"])
    assert "give --folds N too" in one_line(capsys, [*train, "--fold", "1"])
    assert "image runs have no k-fold split" in one_line(capsys, ["train", "vit", "--fold", "0", "--folds", "2"])
    assert not (tmp_path / "bad" / "checkpoints").exists()
    assert "--split fold: the recipe has no fold" in one_line(capsys, ["eval", "--checkpoint", renamed, "--split",
                                                                       "fold"])
