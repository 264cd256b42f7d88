"""``spatio viz erf --stage all`` and ``spatio embed --layer`` on a flat (TimeSformer) and two hierarchical (MViT,
SegFormer3D) families, end to end through ``spatiotemporal.cli.main.main``: every level comes from
``forward_intermediates``, and an unknown level is one line listing the valid names."""

import json

import numpy as np
import pytest

from spatiotemporal.cli.main import main
from spatiotemporal.viz.embed_files import read_embeddings

SEG3D = ("segformer3d_b0:in_chans=1,img_size=[32,32,16],embed_dims=[8,16,24,32],depths=[1,1,1,1],num_heads=[1,1,1,1],"
         "decoder_dim=16")


def _run(argv, capsys):
    rc = main([str(a) for a in argv])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


@pytest.mark.parametrize("model, stages", [
    ("mvit_tiny", ["stage1", "stage2", "stage3"]),
    ("timesformer_tiny:depth=2", ["blocks.0", "blocks.1"]),
])
def test_video_erf_of_every_level(model, stages, video_cache, tmp_path, capsys):
    out = tmp_path / "erf.png"
    _run(["viz", "erf", "--model", model, "--data-root", video_cache, "--num-inputs", "1", "--stage", "all",
          "--out", out, "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert [r["stage"] for r in rep["models"]] == stages
    c, t, h, w = rep["input_shape"]
    for r in rep["models"]:
        assert r["shape"] == [t, h, w] and r["num_inputs"] == 1 and 0 < r["area_ratios"][-1]["area_ratio"] <= 1
    assert main(["viz", "erf", "--model", model, "--data-root", str(video_cache), "--num-inputs", "1", "--stage",
                 "stage9", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ", ".join(stages) in err


def test_volume_erf_of_every_stage_and_the_head(volume_root, tmp_path, capsys):
    out = tmp_path / "erf.png"
    _run(["viz", "erf", "--model", SEG3D, "--data", "btcv", "--data-root", volume_root, "--num-inputs", "1",
          "--stage", "all", "--out", out, "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert [r["stage"] for r in rep["models"]] == ["stage1", "stage2", "stage3", "stage4", "head"]
    assert all(r["shape"] == [32, 32, 16] for r in rep["models"])
    _run(["viz", "erf", "--model", SEG3D, "--data", "btcv", "--data-root", volume_root, "--num-inputs", "1",
          "--stage", "stage2.0", "--out", out, "--no-progress"], capsys)
    assert [r["stage"] for r in json.loads(out.with_suffix(".json").read_text())["models"]] == ["stage2.0"]


@pytest.mark.parametrize("model, layer, dim", [
    ("mvit_tiny", "stage2", 64), ("timesformer_tiny:depth=1", "blocks.0", 128)])
def test_embed_a_level_of_a_video_model(model, layer, dim, video_cache, tmp_path, capsys):
    out = tmp_path / "emb"
    _run(["embed", "--model", model, "--data-root", video_cache, "--layer", layer, "--out", out, "--no-progress"],
         capsys)
    feats, labels, _, meta = read_embeddings(out)
    assert meta["layer"] == layer and feats.shape == (len(labels), dim) and np.isfinite(feats).all()
    wrong = "blocks.0" if layer.startswith("stage") else "stage2"
    assert main(["embed", "--model", model, "--layer", wrong, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.split("error: ")[-1].startswith(f"--layer {wrong}: "), err
    valid = "stage1, stage2, stage3 (or stage.block such as stage1.0)" if layer.startswith("stage") else \
        "blocks.0 (or a block index)"
    assert valid in err


def test_embed_the_last_stage_of_segformer3d(volume_root, tmp_path, capsys):
    out = tmp_path / "emb"
    _run(["embed", "--model", SEG3D, "--data", "btcv", "--data-root", volume_root, "--layer", "stage4",
          "--out", out, "--no-progress"], capsys)
    feats, _, _, meta = read_embeddings(out)
    assert meta["layer"] == "stage4" and feats.shape[1] == 32 and np.isfinite(feats).all()
    out = tmp_path / "emb_block"
    _run(["embed", "--model", SEG3D, "--data", "btcv", "--data-root", volume_root, "--layer", "stage3.0",
          "--out", out, "--no-progress"], capsys)
    feats, _, _, meta = read_embeddings(out)
    assert meta["layer"] == "stage3.0" and feats.shape[1] == 24
