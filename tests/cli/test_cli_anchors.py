"""The commands users of the anchors ask for, end to end through ``spatio``: ``pretrain`` (VideoMAE masked
autoencoder) then ``train --init``, transformers folders in ``train --init`` / ``predict``, ``embed`` (resumable,
read back by ``viz tsne``) and ``viz attention`` on built-in videos (real mp4s) and phantom CTs (real NIfTI)."""

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image
from testing_utils import randomize_

from spatiotemporal.cli.main import main
from spatiotemporal.data.video import ensure_builtin_video_dataset
from spatiotemporal.data.volume import PhantomSpec, write_phantom_dataset
from spatiotemporal.viz.embed_files import read_embeddings


@pytest.fixture(scope="module", autouse=True)
def video_cache(tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("SPATIO_CACHE", str(root))
    ensure_builtin_video_dataset(root)
    yield root
    mp.undo()


def _run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    assert rc == 0, out.err
    return out.out


def test_pretrain_videomae_then_finetune(tmp_path, capsys):
    out = tmp_path / "mae"
    _run(["pretrain", "videomae", "--out", str(out), "--max-steps", "2", "--epochs", "1", "--workers", "0",
          "--batch-size", "4", "model.overrides.depth=1", "pretrain.decoder_depth=1"], capsys)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and summary["primary_metric"] == "loss"
    assert np.isfinite(summary["final_metrics"]["loss"])
    encoder = out / "encoder.safetensors"
    ft = tmp_path / "ft"
    _run(["train", "videomae", "--init", str(encoder), "--out", str(ft), "--max-steps", "1", "--epochs", "1",
          "--workers", "0", "--batch-size", "4", "model.overrides.depth=1"], capsys)
    assert json.loads((ft / "summary.json").read_text())["steps"] == 1
    assert main(["pretrain", "unetr", "--config", "unetr_tiny_builtin", "--out", str(tmp_path / "x")]) == 2
    assert "no self-supervised pretraining for volume models" in capsys.readouterr().err


def test_transformers_folder_in_train_init_and_predict(tmp_path, capsys, video_cache):
    transformers = pytest.importorskip("transformers")
    classes = (video_cache / "builtin_video" / "classes.txt").read_text().split()
    cfg = transformers.TimesformerConfig(image_size=32, patch_size=8, num_frames=8, hidden_size=64,
                                         num_hidden_layers=1, num_attention_heads=4, intermediate_size=256,
                                         id2label=dict(enumerate(classes)))
    hub = tmp_path / "hub"
    randomize_(transformers.TimesformerForVideoClassification(cfg)).save_pretrained(hub)
    clip = video_cache / "builtin_video" / "val" / "000000.mp4"
    text = _run(["predict", str(clip), "--checkpoint", str(hub), "--json"], capsys)
    assert {r["class"] for r in json.loads(text)["top"]} <= set(classes)
    run = tmp_path / "run"
    _run(["train", "timesformer", "--init", str(hub), "--out", str(run), "--max-steps", "1", "--epochs", "1",
          "--workers", "0", "--batch-size", "4", "model.overrides.depth=1", "model.overrides.embed_dim=64"], capsys)
    assert json.loads((run / "summary.json").read_text())["steps"] == 1


def test_embed_resumes_and_tsne_reads_it(tmp_path, capsys, monkeypatch):
    out = tmp_path / "emb"
    argv = ["embed", "--model", "timesformer_tiny:depth=1,num_classes=4", "--out", str(out), "--chunk", "16",
            "--no-progress"]
    calls = []
    from spatiotemporal.pipelines.video import VideoPipeline

    orig = VideoPipeline.dataset_items

    def flaky(self, recipe, split, fail_at=None):
        items = orig(self, recipe, split)
        inner = items.get

        def get(i):
            calls.append(i)
            if fail_at is not None and i == fail_at:
                raise KeyboardInterrupt
            return inner(i)

        items.get = get
        return items

    monkeypatch.setattr(VideoPipeline, "dataset_items", lambda s, r, sp: flaky(s, r, sp, fail_at=40))
    assert main(argv) == 130  # Ctrl-C: "interrupted", exit 130, the finished parts kept
    assert sorted((out / "parts").glob("part-*")) and not (out / "embeddings.safetensors").exists()
    calls.clear()
    monkeypatch.setattr(VideoPipeline, "dataset_items", lambda s, r, sp: flaky(s, r, sp))
    _run(argv, capsys)
    assert min(calls) == 32  # chunks 0 and 1 (items 0..31) were kept, not embedded again
    feats, labels, names, meta = read_embeddings(out)
    assert feats.shape == (100, 128) and meta["complete"] and meta["skipped"] == 0
    rows = list(csv.DictReader(open(out / "index.csv")))
    assert len(rows) == 100 and rows[0]["id"].endswith("000000.mp4")
    assert names[int(rows[0]["label"])] == rows[0]["class"]

    monkeypatch.setattr(VideoPipeline, "dataset_items", orig)
    fresh = tmp_path / "fresh"
    _run(argv[:4] + [str(fresh)] + argv[5:], capsys)
    assert np.allclose(read_embeddings(fresh)[0], feats, atol=1e-6)  # the resumed run equals an uninterrupted one
    assert main(argv) == 2 and "finished embeddings" in capsys.readouterr().err  # never overwritten

    layer = tmp_path / "layer"
    _run(["embed", "--model", "timesformer_tiny:depth=2,num_classes=4", "--out", str(layer), "--layer", "0",
          "--pool", "mean", "--format", "npy", "--no-progress"], capsys)
    assert np.load(layer / "embeddings.npy").shape == (100, 128)
    png = tmp_path / "tsne.png"
    text = _run(["viz", "tsne", "--embeddings", str(out), "--embeddings", str(layer), "--out", str(png),
                 "--no-progress"], capsys)
    rep = json.loads(png.with_suffix(".json").read_text())
    assert rep["num_samples"] == 100 and len(rep["panels"]) == 2 and "kNN-5 acc 2D" in text


def test_viz_attention_video_and_volume(tmp_path, capsys):
    out = tmp_path / "att.png"
    text = _run(["viz", "attention", "--model", "timesformer_tiny:depth=2", "--max-samples", "2", "--gif",
                 "--out", str(out), "--no-progress"], capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["kind"] == "video" and len(rep["samples"]) == 2 and rep["mixer"] == "divided"
    assert abs(sum(rep["samples"][0]["mass_per_frame"]) - 1) < 1e-3 and "mass per frame" in text
    with Image.open(out) as im:
        assert im.format == "PNG"
    with Image.open(out.with_suffix(".gif")) as im:
        assert im.n_frames == 8
    assert np.load(out.with_suffix(".npz"))["rollout_0"].shape == (8, 4, 4)

    root = tmp_path / "btcv"
    write_phantom_dataset(root, PhantomSpec(n_train=1, n_val=1, shape=(40, 40, 16), spacing=(3.0, 3.0, 7.0)))
    out = tmp_path / "vol.png"
    _run(["viz", "attention", "--model", "unetr_tiny:img_size=[16,16,16],num_layers=2,feature_size=4,mixer=divided",
          "--data", "btcv", "--data-root", str(root), "--max-samples", "1", "--out", str(out), "--no-progress"],
         capsys)
    rep = json.loads(out.with_suffix(".json").read_text())
    assert rep["kind"] == "volume" and len(rep["samples"][0]["mass_per_slice"]) == 2
    assert main(["viz", "attention", "--model", "timesformer_tiny:mixer=xca", "--out", str(tmp_path / "x.png"),
                 "--no-progress"]) == 2
    assert "no token-to-token softmax attention" in capsys.readouterr().err
    torch.manual_seed(0)
