"""User errors of the families and commands added after issue 11 (VideoMAE pretraining, `spatio embed`,
`spatio viz attention`, SSv2 and frame folders, multi-label video, 2D segmentation, MViT / SegFormer / MLP-Mixer /
ConvMixer / XCiT, the parallel / compile / recompute settings): each is one line on stderr (exit 2) that names the
file, flag or key and what was expected, and writes or loses nothing. See docs/reliability.md."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from testing_utils import one_line

from spatiotemporal.models import create_model, save_pretrained
from spatiotemporal.utils.errors import UserInputError

QUICK = ["--max-steps", "1", "--epochs", "1", "--workers", "0", "--batch-size", "2"]


pytestmark = pytest.mark.usefixtures("module_cache")



def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ spatio pretrain
def test_pretrain_without_a_recipe_names_the_recipes_that_exist(tmp_path, capsys):
    out = tmp_path / "run"
    msg = one_line(capsys, ["pretrain", "vit", "--out", out, *QUICK])
    assert msg.startswith("no pretraining recipe for vit on --data builtin (spatio pretrain has recipes for: "
                          "videomae on --data builtin)"), msg
    msg = one_line(capsys, ["pretrain", "videomae", "--data", "kinetics", "--out", out, *QUICK])
    assert msg.startswith("no pretraining recipe for videomae on --data kinetics"), msg
    assert "pass --config FILE" in msg
    msg = one_line(capsys, ["pretrain", "videomae", "--config", "videomae_tiny_mae_builtin", "--data", "kinetics",
                            "--out", out, *QUICK])
    assert msg.startswith("--data kinetics needs --data-root DIR"), msg
    msg = one_line(capsys, ["pretrain", "videomae", "--out", out, *QUICK, "pretrain.decoder_heads=5"])
    assert msg == "section 'pretrain': pretrain.decoder_dim 64 is not divisible by pretrain.decoder_heads 5", msg
    assert not out.exists()


# ------------------------------------------------------------------ model overrides and token grids
def test_model_overrides_that_the_data_decides_are_refused_naming_the_data_key(tmp_path, capsys):
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "mlp_mixer", "--out", out, *QUICK, "model.overrides.img_size=33"])
    assert msg == ("model.overrides.img_size=33: the data decides this value (32 here), so it would be ignored; "
                   "set the data's size instead (data.image.img_size=33)"), msg
    msg = one_line(capsys, ["train", "mlp_mixer", "--out", out, *QUICK, "model.overrides.num_classes=3"])
    assert msg.startswith("model.overrides.num_classes=3: the data decides this value (10 here)"), msg
    # the size set where it belongs: the full-grid token MLP cannot drop the border of a 33 px image
    msg = one_line(capsys, ["train", "mlp_mixer", "--out", out, *QUICK, "data.image.img_size=33"])
    assert msg == "cannot build a mlp_mixer model with this config: img_size 33 is not a multiple of patch_size 4"
    msg = one_line(capsys, ["train", "mlp_mixer", "--out", out, *QUICK, "model.overrides.patch_size=5"])
    assert msg.endswith("img_size 32 is not a multiple of patch_size 5"), msg  # was a traceback from the stem
    assert not out.exists()


@pytest.mark.parametrize("name, overrides, expected", [
    ("mixer_tiny_builtin", {"img_size": 33}, "img_size 33 is not a multiple of patch_size 4"),
    ("convmixer_tiny_builtin", {"img_size": 30}, "img_size 30 is not a multiple of patch_size 4"),
    ("xcit_tiny_builtin", {"img_size": 36}, "img_size 36 is not a multiple of patch_size 8"),
    ("videomae_tiny", {"img_size": 30}, "img_size 30 is not a multiple of patch_size 8"),
    ("mvit_tiny", {"stride_kv": (0, 2, 2)}, "stride_kv (0, 2, 2) must be positive sizes (>= 1)"),
    ("mvit_tiny", {"patch_stride": (0, 4, 4)}, "(0, 4, 4) must be positive sizes (>= 1)"),
])
def test_token_grids_that_would_drop_a_border_or_divide_by_zero_are_user_errors(name, overrides, expected):
    """Before: Mixer / ConvMixer / XCiT / VideoMAE floored the grid (a 33 px image lost its border, or failed later
    in the stem); MViT's stride 0 was a ZeroDivisionError."""
    with pytest.raises(UserInputError, match=r"cannot build a \w+ model with this config: ") as e:
        create_model(name, **overrides)
    assert str(e.value).endswith(expected), str(e.value)


@pytest.mark.parametrize("setting, expected", [
    ("train.parallel=nosuch", "command line: key 'train.parallel': 'nosuch' is not one of ['ddp', 'fsdp']"),
    ("train.compile=maybe", "command line: key 'train.compile': expected a bool (true/false), got 'maybe'"),
    ("train.amp=sometimes", "command line: key 'train.amp': 'sometimes' is not one of ['none', 'bf16', 'fp16', "
                            "'auto']"),
    ("model.overrides.recompute=sometimes", "cannot build a vit model with this config: recompute must be one of "
                                            "none, pointwise, projections, full, got 'sometimes'"),
    ("model.overrides.mixer=nosuch", "unknown mixer 'nosuch'. Registered: "),
])
def test_perf_and_mixer_settings_name_the_key(tmp_path, capsys, setting, expected):
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "vit", "--out", out, *QUICK, setting])
    assert msg.startswith(expected), msg
    assert not out.exists()


def test_inference_tta_flips_and_the_mvit_mixer_name_the_key(tmp_path, capsys):
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "unetr", "--out", out, *QUICK, "data.inference.tta_flips=bogus"])
    assert msg == "section 'data.inference': tta_flips must be one of ['all', 'none', 'single'], got 'bogus'"
    msg = one_line(capsys, ["train", "mvit", "--out", out, *QUICK, "model.overrides.mixer=nosuch"])
    assert msg.startswith("unknown mixer 'nosuch'. Registered: "), msg
    assert not out.exists()


# ------------------------------------------------------------------ spatio predict with the new families
@pytest.mark.parametrize("name, wrong, expected", [
    ("mvit_tiny", "x.png", "looks like an image file, but {ckpt} is a video model (it takes .mp4"),
    ("segformer_b0", "x.mp4", "looks like a video file, but {ckpt} is an image_seg model (it takes .jpg"),
    ("xcit_tiny_builtin", "x.nii.gz", "looks like a volume file, but {ckpt} is an image model (it takes .jpg"),
])
def test_predict_with_another_kind_of_input_names_both(tmp_path, capsys, name, wrong, expected):
    ckpt = save_pretrained(create_model(name, **({"num_classes": 2} if name == "segformer_b0" else {})),
                           tmp_path / f"{name}.safetensors")
    path = tmp_path / wrong
    path.write_bytes(b"not read")
    before = _tree(tmp_path)
    msg = one_line(capsys, ["predict", path, "--checkpoint", ckpt])
    assert msg.startswith(f"{path} " + expected.format(ckpt=ckpt)), msg
    assert _tree(tmp_path) == before


# ------------------------------------------------------------------ spatio embed, spatio viz
def test_embed_refuses_bad_settings_and_foreign_folders_before_writing(tmp_path, capsys):
    base = ["embed", "--model", "vit_tiny_builtin", "--no-progress"]
    out = tmp_path / "emb"
    msg = one_line(capsys, [*base, "--out", out, "--layer", "40"])
    assert msg == "--layer 40: the model has 4 blocks (0..3, or negative)"
    msg = one_line(capsys, [*base, "--out", out, "--chunk", "0"])  # was a ZeroDivisionError
    assert msg == "--chunk must be >= 1, got 0"
    msg = one_line(capsys, ["embed", "--model", "mvit_image_builtin", "--out", out, "--pool", "cls"])
    assert msg.startswith("--pool cls: the encoder blocks of MViTImage carry no class token"), msg
    msg = one_line(capsys, ["embed", "--model", "mvit_image_builtin", "--out", out, "--layer", "1"])
    assert msg == "--layer 1: MViTImage has stages, not one stack of blocks; expected one of stage1, stage2, stage3"
    assert not out.exists()
    bad = tmp_path / "bad.pt"
    bad.write_text("not a checkpoint")
    msg = one_line(capsys, ["embed", "--checkpoint", bad, "--out", out])
    assert msg.startswith(f"{bad}: cannot be read as a weights-only checkpoint"), msg
    assert not out.exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    msg = one_line(capsys, [*base, "--out", mine])
    assert msg == (f"--out {mine}: a folder that is not empty (notes.txt) and not a spatio embed output (no "
                   "meta.json); choose a new or empty folder")
    assert _tree(mine) == {"notes.txt": b"keep me"}


@pytest.mark.parametrize("spec, name, own", [
    ("vit_tiny_builtin:class_token=false,global_pool=map", "VisionTransformer", ", global_pool=map"),
    ("timesformer_tiny:class_token=false,global_pool=avg", "TimeSformer", ", global_pool=avg"),
    ("mixer_tiny_builtin", "MlpMixer", ""),  # these four wrote meta.json and parts/ into --out before failing
    ("convmixer_tiny_builtin", "ConvMixer", ""),
    ("videomae_tiny", "VideoMAE", ""),
    ("unetr_tiny", "UNETR", ", global_pool=avg"),
    ("xcit_tiny_builtin", "XCiT", ", global_pool=token"),  # embedded a patch token as the class token
])
def test_embed_pool_cls_without_a_class_token_stops_before_writing(spec, name, own, tmp_path, capsys):
    out = tmp_path / "emb"
    msg = one_line(capsys, ["embed", "--model", spec, "--out", out, "--pool", "cls", "--no-progress"])
    assert msg == (f"--pool cls: the encoder blocks of {name} carry no class token; expected --pool mean (the mean "
                   f"of the grid tokens) or --pool default (the model's own pooling{own})")
    assert not out.exists()


def test_reading_a_broken_embed_folder_names_its_meta_json(tmp_path, capsys):
    folder = tmp_path / "emb"
    folder.mkdir()
    (folder / "meta.json").write_text("{not json")
    msg = one_line(capsys, ["viz", "tsne", "--embeddings", folder, "--out", tmp_path / "t.png"])
    assert msg.startswith(f"{folder / 'meta.json'}: not valid JSON ("), msg
    (folder / "meta.json").write_text(json.dumps({"complete": False}))
    msg = one_line(capsys, ["viz", "tsne", "--embeddings", folder, "--out", tmp_path / "t.png"])
    assert msg == f"{folder}: unfinished embeddings; run the same spatio embed command again to finish them"
    assert not (tmp_path / "t.png").exists()


@pytest.mark.parametrize("spec, expected", [
    ("mvit_image_builtin", "MViTImage has no single stack of encoder blocks whose attention can be rolled out"),
    ("mixer_tiny_builtin", "block 0: mixer MixerTokenMLP has no token-to-token softmax attention to roll out"),
    ("xcit_tiny_builtin", "block 0: mixer XCAttention has no token-to-token softmax attention to roll out"),
])
def test_viz_attention_on_a_model_without_softmax_attention(tmp_path, capsys, spec, expected):
    png = tmp_path / "att.png"
    msg = one_line(capsys, ["viz", "attention", "--model", spec, "--out", png, "--max-samples", "1",
                            "--no-progress"])
    assert msg.startswith(expected), msg  # MViT: an AttributeError traceback before
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ video data: SSv2, frame folders, multi-label
def test_ssv2_without_its_json_names_the_files_it_expects(tmp_path, capsys):
    root = tmp_path / "ssv2"
    root.mkdir()
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "timesformer", "--data", "ssv2", "--data-root", root, "--out", out, *QUICK])
    assert msg.startswith(f"Something-Something V2 annotation {root / 'something-something-v2-labels.json'} does "
                          "not exist; --data ssv2 expects --data-root DIR holding something-something-v2-labels.json, "
                          "something-something-v2-train.json and something-something-v2-validation.json"), msg
    assert not out.exists()


def _kinetics_folder(root: Path, rows: str) -> Path:
    root.mkdir()
    (root / "classes.txt").write_text("left\nright\n")
    for split in ("train", "val", "test"):
        (root / f"{split}.csv").write_text(rows)
    return root


def test_a_set_of_empty_frame_folders_stops_in_one_line_and_writes_no_checkpoint(tmp_path, capsys):
    root = _kinetics_folder(tmp_path / "frames", "f0 0\nf1 1\nf2 0\nf3 1\n")
    for i in range(4):
        (root / f"f{i}").mkdir()
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "timesformer", "--data", "kinetics", "--data-root", root, "--out", out, *QUICK,
                            "model.overrides.depth=1"])
    assert msg.startswith("epoch 1 had no usable training sample in 2 batches per rank: 4 inputs were skipped as "
                          f"unreadable (e.g. {root / 'f0'} (frame folder without .jpg/.jpeg/.png images), "), msg
    assert not (out / "checkpoints" / "last.pt").exists() and not (out / "checkpoints" / "best.pt").exists()


def test_several_labels_in_a_single_label_set_point_to_multi_label(tmp_path, capsys):
    root = _kinetics_folder(tmp_path / "ml", "v0.mp4 0;1\nv1.mp4 1\n")
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "timesformer", "--data", "kinetics", "--data-root", root, "--out", out, *QUICK,
                            "model.overrides.depth=1"])
    assert msg == (f"{root / 'train.csv'}:1: unknown class name '0;1'; expected one of the 2 classes (left, right) or "
                   "a class index; several labels 'a;b' are read by multi-label video sets only "
                   "(data.video.multi_label=true)"), msg
    assert not (out / "checkpoints").exists()


# ------------------------------------------------------------------ 2D segmentation folders
def _seg_folder(root: Path, mask_size: tuple[int, int] = (20, 24)) -> Path:
    """images/{train,val}/ and masks/{train,val}/ of 20x24 grey PNGs; the first training mask of ``mask_size``."""
    rng = np.random.default_rng(0)
    (root / "class_names.txt").parent.mkdir(parents=True)
    (root / "class_names.txt").write_text("background\norgan\n")
    for split in ("train", "val"):
        for kind in ("images", "masks"):
            (root / kind / split).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(rng.integers(0, 255, (24, 20), dtype=np.uint8)).save(root / "images" / split / f"{i}.png")
            w, h = mask_size if (split, i) == ("train", 0) else (20, 24)
            Image.fromarray(rng.integers(0, 2, (h, w), dtype=np.uint8)).save(root / "masks" / split / f"{i}.png")
    return root


def test_segmentation_folder_problems_are_one_line_before_training(tmp_path, capsys):
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "segformer", "--data", "folder", "--out", out, *QUICK])
    assert msg == "--data folder needs --data-root DIR (with images/<split>/, masks/<split>/, class_names.txt)"
    root = _seg_folder(tmp_path / "seg", mask_size=(10, 12))
    before = _tree(root)
    msg = one_line(capsys, ["train", "segformer", "--data", "folder", "--data-root", root, "--out", out, *QUICK])
    mask, image = root / "masks" / "train" / "0.png", root / "images" / "train" / "0.png"
    assert msg == (f"{mask}: mask of 10x12 pixels for the image {image} of 20x24; expected one label per image "
                   "pixel (same width x height)"), msg  # was a RuntimeError traceback in the Dice of the evaluation
    assert _tree(root) == before and not (out / "checkpoints").exists()
    (root / "images" / "val" / "1.png").write_text("not a png")
    (root / "masks" / "train" / "0.png").unlink()
    Image.fromarray(np.zeros((24, 20), np.uint8)).save(mask)
    msg = one_line(capsys, ["train", "segformer", "--data", "folder", "--data-root", root, "--out", out, *QUICK])
    assert msg.startswith(f"{root / 'images' / 'val' / '1.png'}: not a readable image (UnidentifiedImageError"), msg
