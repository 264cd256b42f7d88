"""The spec a checkpoint carries (format 3): a versioned preprocessing spec and nothing of the machine that wrote it
in the files meant for sharing; format-2 checkpoints load with one warning; a damaged stored spec is refused by
name."""

import json
import logging
import math

import nibabel as nib
import numpy as np
import pytest
import torch

from spatiotemporal.cli.main import main
from spatiotemporal.engine import config_to_dict
from spatiotemporal.engine.checkpoint import CHECKPOINT_FORMAT
from spatiotemporal.models import create_model, load_pretrained, save_pretrained
from spatiotemporal.pipelines import VideoPipeline, VolumePipeline

pytestmark = pytest.mark.usefixtures("module_cache")

ROOT_SECRET, OUT_SECRET = "USERNAME_secret_root_7f3a", "USERNAME_secret_out_9b1c"


def test_files_meant_for_sharing_hold_no_path_of_the_training_machine(tmp_path, capsys):
    root, out = tmp_path / ROOT_SECRET / "videos", tmp_path / OUT_SECRET / "run"
    assert main(["train", "timesformer", "--data-root", str(root), "--out", str(out), "--max-steps", "1",
                 "--epochs", "1", "--workers", "0", "--batch-size", "2", "model.overrides.depth=1"]) == 0
    assert (root / "builtin_video" / "val.csv").is_file()  # the run read its data from there
    ckdir = out / "checkpoints"
    weights = save_pretrained(load_pretrained(ckdir / "best.pt"), tmp_path / OUT_SECRET / "shared" / "w.safetensors")
    emb = tmp_path / OUT_SECRET / "emb"
    assert main(["embed", "--checkpoint", str(ckdir / "best.pt"), "--data-root", str(root), "--out", str(emb),
                 "--no-progress", "--device", "cpu"]) == 0
    shared = [ckdir / "best.pt", weights, weights.with_suffix(".json"), *sorted(emb.iterdir())]
    assert {p.name for p in shared} >= {"best.pt", "w.safetensors", "w.json", "embeddings.safetensors",
                                        "meta.json", "index.csv"}
    for path in shared:
        held = path.read_bytes()
        for secret in (ROOT_SECRET, OUT_SECRET):
            assert secret.encode() not in held, f"{path.name} holds {secret}"
    assert OUT_SECRET.encode() in (ckdir / "last.pt").read_bytes()  # the search sees into .pt files; last.pt resumes
    meta = json.loads((emb / "meta.json").read_text())
    spec = json.loads(weights.with_suffix(".json").read_text())
    assert meta["source"] == "best.pt" and meta["spec"]["preprocessing"] == spec["preprocessing"]
    assert spec["format_version"] == 3 and set(spec) <= {"format_version", "arch", "modality", "model_name",
                                                          "config", "preprocessing", "class_names", "metrics"}
    assert spec["preprocessing"]["version"] == 1 and spec["preprocessing"]["video"]["num_frames"] == 8
    assert "root" not in spec["preprocessing"] and "random_flip" not in spec["preprocessing"]["video"]
    assert spec["metrics"]["best"]["value"] == torch.load(ckdir / "best.pt", weights_only=True)["best"]["value"]


def test_a_format_2_checkpoint_loads_with_one_warning_and_keeps_only_its_preprocessing(tmp_path, caplog):
    pipe = VideoPipeline()
    model = create_model("timesformer_tiny", depth=1, num_classes=3)
    recipe = pipe.load_recipe("timesformer_tiny_builtin", ["data.root=/home/USERNAME/kinetics",
                                                           "data.video.sampling_rate=3"])
    pipe.resolve_data(recipe, model)
    spec = {"format_version": 2, "arch": "timesformer", "modality": "video", "model_name": "timesformer_tiny",
            "config": model.config_dict(), "data": config_to_dict(recipe.data), "class_names": ["a", "b", "c"]}
    v2 = tmp_path / "v2.pt"  # a best.pt as format 2 wrote it: the whole data section, the training section
    torch.save({"format": CHECKPOINT_FORMAT, "kind": "best", "model": model.state_dict(), "task": {"spec": spec},
                "config": {"out": "/home/USERNAME/runs/k400"}}, v2)
    with caplog.at_level(logging.INFO):
        loaded = load_pretrained(v2)
        rebuilt = pipe.recipe_from_checkpoint(loaded, [], v2)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and warnings[0].startswith(f"{v2}: a format-2 checkpoint: its stored data section is "
                                                         "reduced to the preprocessing spec") and "root" in warnings[0]
    prep = loaded.pretrained_cfg["preprocessing"]
    assert prep["version"] == 1 and "root" not in prep and "cache" not in json.dumps(prep)
    assert rebuilt.data.video.sampling_rate == 3 and rebuilt.data.root is None
    assert not recipe.data.video.random_flip and rebuilt.data.video.random_flip  # augmentation: not in the spec
    caplog.clear()
    again = save_pretrained(loaded, tmp_path / "v3.safetensors")
    assert "USERNAME" not in again.with_suffix(".json").read_text()
    assert load_pretrained(again).pretrained_cfg["preprocessing"] == prep
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.fixture(scope="module")
def volume_model():
    pipe = VolumePipeline()
    model = create_model("unetr_tiny", img_size=(16, 16, 16), hidden_size=32, mlp_dim=64, num_layers=1,
                         num_heads=2, feature_size=4)
    recipe = pipe.load_recipe("unetr_tiny_builtin", ["data.volume.roi=[16,16,16]"])
    return model, pipe.preprocessing_spec(recipe)


@pytest.mark.parametrize("key, value", [("volume.pixdim", [math.nan, 2.5, 3.0]),
                                        ("volume.pixdim", [math.inf, 2.5, 3.0]),
                                        ("volume.pixdim", [-1.5, 2.5, 3.0]),
                                        ("volume.pixdim", [0.0, 2.5, 3.0]),
                                        ("volume.pixdim", ["abc", 2.5, 3.0]),
                                        ("volume.pixdim", ["nan", 2.5, 3.0]),
                                        ("overlap", math.inf)])
def test_a_damaged_stored_spec_is_refused_naming_the_file_and_the_key(volume_model, tmp_path, capsys, key, value):
    model, prep = volume_model
    prep = json.loads(json.dumps(prep))
    node = prep
    *parents, last = key.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    ckpt = save_pretrained(model, tmp_path / "edited.safetensors", preprocessing=prep, class_names=list("abcdef"))
    ct = tmp_path / "ct.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8), np.float32), np.eye(4)), str(ct))
    capsys.readouterr()
    assert main(["predict", str(ct), "--checkpoint", str(ckpt), "--out", str(tmp_path / "p.nii.gz")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"spatio predict: error: {ckpt}"), err
    assert last in err, err
    assert not (tmp_path / "p.nii.gz").exists()


@pytest.mark.parametrize("edit, says", [
    (lambda s: s.update(format_version=4), "model spec format 4 was written by a newer spatiotemporal"),
    (lambda s: s["preprocessing"].update(version=2), "preprocessing spec version 2 was written by a newer"),
    (lambda s: s["preprocessing"].update(version="1"), "'preprocessing.version' is '1'; expected an integer"),
    (lambda s: s["config"].update(drop_path_rate=math.nan), "'config.drop_path_rate' is nan; expected a finite"),
])
def test_a_spec_of_a_newer_version_or_with_a_non_finite_config_is_refused(volume_model, tmp_path, edit, says):
    from spatiotemporal.models import CheckpointFormatError, model_spec

    model, prep = volume_model
    spec = model_spec(model, preprocessing=prep)
    edit(spec)
    path = tmp_path / "edited.pt"
    torch.save({"model": model.state_dict(), "spatiotemporal": spec}, path)
    with pytest.raises(CheckpointFormatError, match="^" + str(path).replace(".", r"\.")) as e:
        load_pretrained(path)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_undeclared_keys_of_a_stored_spec_are_ignored_with_one_warning(caplog):
    pipe = VideoPipeline()
    model = create_model("timesformer_tiny", depth=1, num_classes=3)
    prep = pipe.preprocessing_spec(pipe.load_recipe("timesformer_tiny_builtin", ["data.video.sampling_rate=5"]))
    prep["video"].update(backend="pyav", random_flip=False)  # what a format-2 spec kept without the pipelines
    model.pretrained_cfg = {"preprocessing": prep}
    with caplog.at_level(logging.INFO):
        recipe = pipe.recipe_from_checkpoint(model, [], None)
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == ["the model: the stored preprocessing holds keys that are not preprocessing keys of video "
                        "models, ignored: video.backend, video.random_flip"]
    assert recipe.data.video.sampling_rate == 5 and recipe.data.video.backend == "auto"
