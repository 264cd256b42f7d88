"""``spatio probe`` on tiny trained checkpoints: both built-in video sets and the CT phantoms."""

from __future__ import annotations

import json

import pytest

from spatiotemporal.cli.main import main


def _run(tmp, name, family, *extra):
    out = tmp / name
    assert main(["train", family, "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "2", *extra]) == 0
    return out / "checkpoints" / "last.pt"


@pytest.fixture(scope="module")
def ckpts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("probe")
    return {"video": _run(tmp, "video", "timesformer", "model.overrides.depth=1"),
            "motion": _run(tmp, "motion", "timesformer", "model.overrides.depth=1", "data.dataset=builtin_motion"),
            "volume": _run(tmp, "volume", "unetr", "model.overrides.num_layers=2"),
            "image": _run(tmp, "image", "vit", "model.overrides.depth=1")}


def _probe(ckpt, *flags):
    assert main(["probe", "--checkpoint", str(ckpt), "--workers", "0", "--batch-size", "16", *flags]) == 0


def test_video_builtin_every_perturbation(ckpts, capsys):
    _probe(ckpts["video"])
    out = json.loads(ckpts["video"].with_name("probe.json").read_text())
    perts = out["perturbations"]
    assert list(perts) == ["original", "reversed", "shuffled", "static", "dropped", "shuffled_trend_kept"]
    assert out["metric"] == "top1" and out["split"] == "test" and "/" not in out["checkpoint"]
    classes = {"right", "left", "right_then_left", "left_then_right"}
    for r in perts.values():
        assert set(r["per_class"]) == classes and 0 <= r["top1"] <= 100 and r["num_samples"] == 100
        assert r["drop"] == pytest.approx(perts["original"]["top1"] - r["top1"])
    assert perts["original"]["drop"] == 0
    assert ckpts["video"].with_name("probe.png").stat().st_size > 1000
    assert "shuffled_trend_kept" in capsys.readouterr().out
    # a second probe never overwrites the first
    _probe(ckpts["video"], "--perturb", "static")
    assert list(json.loads(ckpts["video"].with_name("probe_2.json").read_text())["perturbations"]) == [
        "original", "static"]
    assert ckpts["video"].with_name("probe_2.png").exists()


def test_video_motion_set(ckpts, tmp_path):
    _probe(ckpts["motion"], "--perturb", "reversed", "shuffled_trend_kept", "--out", str(tmp_path / "m.json"))
    out = json.loads((tmp_path / "m.json").read_text())
    assert list(out["perturbations"]) == ["original", "reversed", "shuffled_trend_kept"]
    assert {"up", "down", "grow", "shrink"} <= set(out["perturbations"]["reversed"]["per_class"])
    assert (tmp_path / "m.png").exists()


def test_volume_phantoms(ckpts, tmp_path):
    _probe(ckpts["volume"], "--perturb", "flipped", "static", "--out", str(tmp_path / "v.json"))
    out = json.loads((tmp_path / "v.json").read_text())
    assert out["metric"] == "mean_dice" and out["split"] == "validation" and out["grid"] == "resampled"
    assert list(out["perturbations"]) == ["original", "flipped", "static"]
    assert (tmp_path / "v.png").exists()
    for r in out["perturbations"].values():
        assert 0 <= r["mean_dice"] <= 1 and r["per_class"] and r["num_samples"] > 0


def _one_line(capsys, argv):
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    return err


def test_one_line_errors(ckpts, capsys):
    err = _one_line(capsys, ["probe", "--checkpoint", ckpts["volume"], "--perturb", "reversed"])
    assert "--perturb reversed: not a volume perturbation (expected one of original, shuffled, flipped, static)" in err
    err = _one_line(capsys, ["probe", "--checkpoint", ckpts["image"], "--workers", "0"])
    assert "image models have no time or depth axis to perturb" in err
