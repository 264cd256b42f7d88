"""Every user-facing failure of `spatio` is one line on stderr (exit 2) naming the file, line or key and what was
expected, and loses nothing; a bug keeps its traceback. Each case of docs/reliability.md that the CLI reaches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from testing_utils import one_line

from spatiotemporal.cli import main as cli_main
from spatiotemporal.cli.main import main
from spatiotemporal.models import load_pretrained, save_pretrained
from spatiotemporal.utils.errors import UnknownNameError, UserInputError

pytestmark = pytest.mark.usefixtures("module_cache")


def _run(tmp, family, *extra):
    out = tmp / family
    assert main(["train", family, "--out", str(out), "--max-steps", "1", "--epochs", "1", "--workers", "0",
                 "--batch-size", "2", *extra]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One tiny trained run per modality: ``{"video": run dir, "volume": ..., "image": ...}``."""
    tmp = tmp_path_factory.mktemp("runs")
    return {"video": _run(tmp, "timesformer", "model.overrides.depth=1"),
            "volume": _run(tmp, "unetr", "model.overrides.num_layers=2"),
            "image": _run(tmp, "vit", "model.overrides.depth=1")}


@pytest.fixture(scope="module")
def video():
    from spatiotemporal.data.video import ensure_builtin_video_dataset

    root = ensure_builtin_video_dataset()
    return root / (root / "val.csv").read_text().split()[0]


@pytest.fixture(scope="module")
def ct():
    from spatiotemporal.data.volume import ensure_builtin_volume_dataset

    return sorted((ensure_builtin_volume_dataset() / "imagesTr").glob("*.nii.gz"))[0]



def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ flags and recipes
def test_bad_flags_and_recipes_name_the_key_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("model:\n  name: timesformer_tiny\ntrain: [1, 2\n")
    typo = tmp_path / "typo.yaml"
    typo.write_text("model:\n  name: timesformer_tiny\ntrain:\n  epohcs: 3\n")
    cases = [
        (["nonexistent_model"], "unknown model 'nonexistent_model'. See `spatio models`"),
        (["timesformer", "--config", tmp_path / "nope.yaml"], f"recipe '{tmp_path / 'nope.yaml'}' not found"),
        (["timesformer", "--config", bad_yaml], f"{bad_yaml}:4:1: not valid YAML (while parsing a flow sequence"),
        (["timesformer", "--config", typo], f"{typo}: unknown key 'train.epohcs' in section 'train'. Did you mean "
                                            "'epochs'?"),
        (["timesformer", "--max-steps", "0"], "train.max_steps (--max-steps) must be >= 1 or unset, got 0"),
        (["timesformer", "--batch-size", "0"], "train.batch_size (--batch-size) must be >= 1, got 0"),
        (["timesformer", "--epochs", "0"], "train.epochs (--epochs) must be >= 1, got 0"),
        (["timesformer", "--workers", "-1"], "train.num_workers (--workers) must be >= 0, got -1"),
        (["timesformer", "train.optim.lr=-1"], "train.optim.lr must be a finite number >= 0, got -1.0"),
        (["timesformer", "train.optim.weight_decay=-1"], "train.optim.weight_decay must be a finite number >= 0"),
        (["timesformer", "--device", "tpu"], "device 'tpu': expected auto, cpu, cuda or cuda:N"),
        (["timesformer", "model.overrides.num_heads=5"],
         "cannot build a timesformer model with this config: dim 128 is not divisible by num_heads 5"),
        (["timesformer", "model.overrides.patch_size=5"],
         "cannot build a timesformer model with this config: img_size 32 is not a multiple of patch_size 5"),
        (["timesformer", "model.overrides.mixer=dividd"], "unknown mixer 'dividd'. Did you mean 'divided'?"),
        (["unetr", "data.volume.pixdim=[0,1,1]"],
         "section 'data.volume': VolumeDataConfig.pixdim must be positive mm spacings, got (0.0, 1.0, 1.0)"),
        (["unetr", "data.volume.nonfinite=drop"], "VolumeDataConfig.nonfinite must be one of ('error', 'zero')"),
        (["timesformer", "--batch-size", "1000"], "the training set gives no batch: 400 samples per rank < "
                                                  "train.batch_size 1000 with train.drop_last=true"),
        (["vit", "--data-file", "train.csv"], "--data-file train.csv: image datasets have no index file to choose"),
        (["timesformer", "--data-file", "mine.csv"], "--data-file mine.csv: video datasets have one labels file "
                                                     "per split; expected SPLIT=FILE"),
    ]
    for args, expected in cases:
        msg = one_line(capsys, ["train", *args, "--out", out, *([] if "--workers" in args else ["--workers", "0"])])
        assert expected in msg, (args, msg)
        assert not out.exists(), args  # refused before anything was written


def test_cuda_on_a_machine_without_it(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert one_line(capsys, ["train", "timesformer", "--device", "cuda"]) == \
        "device 'cuda:0' requested but CUDA is not available"


def test_unwritable_places_are_named(runs, tmp_path, capsys, monkeypatch):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file where a folder should be")
    assert one_line(capsys, ["train", "timesformer", "--out", blocker / "run", "--workers", "0"]) == \
        f"{blocker / 'run'}: Not a directory"
    target = blocker / "x.safetensors"
    assert one_line(capsys, ["inflate", runs["image"] / "checkpoints" / "last.pt", "--to", "timesformer",
                             "num_frames=8", "img_size=32", "--out", target]) == \
        f"{target}: cannot write ({blocker} is a file, not a folder)"
    monkeypatch.setenv("SPATIO_CACHE", str(blocker / "cache"))
    assert one_line(capsys, ["train", "unetr", "--out", tmp_path / "r2"]) == \
        f"{blocker / 'cache' / 'builtin_volume'}: cannot write (Not a directory)"
    assert blocker.read_text() == "a file where a folder should be"


# ------------------------------------------------------------------ checkpoints
def test_unreadable_checkpoints_are_named(runs, video, tmp_path, capsys):
    last = runs["video"] / "checkpoints" / "last.pt"
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(last.read_bytes()[:5000])
    weights = save_pretrained(load_pretrained(last), tmp_path / "w.safetensors")
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(weights.read_bytes()[:20000])
    for ckpt in (text, trunc):
        msg = one_line(capsys, ["predict", video, "--checkpoint", ckpt])
        assert msg.startswith(f"{ckpt}: cannot be read as a weights-only checkpoint (") and "never unpickles" in msg
    msg = one_line(capsys, ["predict", video, "--checkpoint", cut])
    assert msg.startswith(f"{cut}: not a readable safetensors file (") and "truncated" in msg
    assert one_line(capsys, ["predict", video, "--checkpoint", tmp_path / "none.pt"]) == \
        f"checkpoint not found: {tmp_path / 'none.pt'}"
    # a run folder is read through its checkpoints/best.pt
    capsys.readouterr()
    assert main(["predict", str(video), "--checkpoint", str(runs["video"]), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["top"]) == 4


def test_a_checkpoint_with_nan_weights_is_refused_by_name(runs, video, tmp_path, capsys):
    model = load_pretrained(runs["video"] / "checkpoints" / "last.pt")
    with torch.no_grad():
        model.head.weight.fill_(float("nan"))
    nan = save_pretrained(model, tmp_path / "nan.safetensors")
    msg = one_line(capsys, ["predict", video, "--checkpoint", nan])
    assert msg == (f"{nan}: 1 of {len(model.state_dict())} weight tensors hold NaN or infinite values (head.weight): "
                   "it was saved from a diverged model and would predict nonsense; use an earlier checkpoint")
    out = tmp_path / "run"
    msg = one_line(capsys, ["train", "timesformer", "--init", nan, "--out", out, "--workers", "0"])
    assert msg.startswith(f"{nan}: 1 of ") and not out.exists()


def test_resume_problems_keep_the_run(runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(runs["video"], run)
    before = _tree(run)
    common = ["train", "timesformer", "--out", run, "--workers", "0", "--batch-size", "2", "model.overrides.depth=1"]
    msg = one_line(capsys, common)
    assert msg.startswith(f"{run / 'checkpoints' / 'last.pt'} exists: continue that run with --resume")
    msg = one_line(capsys, [*common[:-1], "model.overrides.depth=2", "--resume"])
    assert msg.startswith(f"cannot resume: {run / 'checkpoints' / 'last.pt'} holds another model than this run's (")
    assert f"resume with those of {run / 'config.yaml'}, or start a new run" in msg
    marker = tmp_path / "code_ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    torch.save({"format": "spatiotemporal.engine/1", "model": Evil()}, run / "checkpoints" / "last.pt")
    msg = one_line(capsys, [*common, "--resume"])
    assert msg.startswith(f"cannot resume: {run / 'checkpoints' / 'last.pt'}: not a readable checkpoint")
    assert f"{run / 'checkpoints' / 'best.pt'} is readable (step 1, epoch 0)" in msg
    assert not marker.exists()
    after = _tree(run)
    assert {k: v for k, v in after.items() if k != "checkpoints/last.pt"} == \
        {k: v for k, v in before.items() if k != "checkpoints/last.pt"}


# ------------------------------------------------------------------ predict and eval inputs
def test_predict_inputs_it_cannot_take(runs, video, ct, tmp_path, capsys):
    vckpt, uckpt = runs["video"] / "checkpoints" / "last.pt", runs["volume"] / "checkpoints" / "last.pt"
    ickpt = runs["image"] / "checkpoints" / "last.pt"
    text_mp4 = tmp_path / "text.mp4"
    text_mp4.write_text("hello")
    cut_mp4 = tmp_path / "cut.mp4"
    cut_mp4.write_bytes(video.read_bytes()[:3000])
    png = tmp_path / "bad.png"
    png.write_bytes(b"garbage")
    nii = tmp_path / "bad.nii.gz"
    nii.write_bytes(b"garbage")
    blocker = tmp_path / "notes.txt"
    blocker.write_text("x")
    cases = [
        ([tmp_path, "--checkpoint", vckpt], f"{tmp_path} is a folder; predict takes one file"),
        ([video, "--checkpoint", vckpt, "--topk", "0"], "--topk must be >= 1, got 0"),
        ([video, "--checkpoint", vckpt, "--classes", tmp_path / "none.txt"],
         f"--classes {tmp_path / 'none.txt'}: file not found (expected one class name per line)"),
        ([text_mp4, "--checkpoint", vckpt], f"cannot decode video {text_mp4}: "),
        ([cut_mp4, "--checkpoint", vckpt], f"cannot decode video {cut_mp4}: "),
        ([video, "--checkpoint", uckpt], f"{video} looks like a video file, but {uckpt} is a volume model"),
        ([png, "--checkpoint", ickpt], f"cannot read image {png}: UnidentifiedImageError"),
        ([nii, "--checkpoint", uckpt], f"{nii}: image file '{nii}' is not a readable NIfTI/nibabel image"),
        ([video, "--checkpoint", vckpt, "data.video.crop_size=30"],
         f"data.video.crop_size=30: the data would give inputs of size (8, 30, 30), but the model of {vckpt} takes "
         "(8, 32, 32)"),
        ([ct, "--checkpoint", uckpt, "--out", blocker / "p.nii.gz"],
         f"{blocker}: is a file, so the output cannot go under it"),
    ]
    for args, expected in cases:
        msg = one_line(capsys, ["predict", *args])
        assert msg.startswith(expected), (args, msg)
    assert blocker.read_text() == "x" and video.is_file()


def test_eval_splits_and_files_name_what_exists(runs, capsys):
    ckpt = runs["volume"] / "checkpoints" / "last.pt"
    assert one_line(capsys, ["eval", "--checkpoint", ckpt, "--split", "test"]).startswith(
        "volume sets have the splits 'train' and 'val'")
    assert one_line(capsys, ["eval", "--checkpoint", runs["video"] / "checkpoints" / "last.pt", "--split",
                             "bogus"]) == "unknown split 'bogus'; expected one of ('train', 'val', 'test')"


# ------------------------------------------------------------------ what is not a user error
def test_a_bug_keeps_its_traceback_and_debug_shows_every_traceback(monkeypatch, capsys):
    def buggy(args):
        return {}["missing"]  # a programming error, not the user's

    parser = cli_main.build_parser()
    monkeypatch.setattr(cli_main, "build_parser", lambda: _with_func(parser, "models", buggy))
    with pytest.raises(KeyError, match="missing"):
        main(["models"])
    monkeypatch.undo()
    with pytest.raises(UnknownNameError, match="unknown model 'nope'"):
        main(["--debug", "train", "nope"])
    monkeypatch.setenv("SPATIO_DEBUG", "1")
    with pytest.raises(UnknownNameError):
        main(["train", "nope"])


def _with_func(parser, command, func):
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.choices[command].set_defaults(func=func)
    return parser


def test_a_user_error_wrapped_by_a_library_is_still_one_line(monkeypatch, capsys):
    def wrapped(args):
        try:
            raise UserInputError("case 3: image 'x.nii.gz' is broken")
        except UserInputError as e:
            raise RuntimeError("applying transform <monai.transforms.compose.Compose>") from e

    parser = cli_main.build_parser()
    monkeypatch.setattr(cli_main, "build_parser", lambda: _with_func(parser, "models", wrapped))
    assert one_line(capsys, ["models"]) == "case 3: image 'x.nii.gz' is broken"


def test_ctrl_c_is_one_line_with_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli_main.build_parser()
    monkeypatch.setattr(cli_main, "build_parser", lambda: _with_func(parser, "models", interrupted))
    capsys.readouterr()
    assert main(["models"]) == 130
    assert capsys.readouterr().err.strip() == "spatio models: interrupted"


def test_nan_block_in_a_ct_is_refused_by_predict_or_zeroed_with_a_warning(runs, ct, tmp_path, capsys, caplog):
    img = nib.load(str(ct))
    data = np.asarray(img.dataobj).astype(np.float32)
    data[10:30, 10:30, 5:15] = np.nan
    header = img.header.copy()
    header.set_data_dtype(np.float32)
    bad = tmp_path / "nan_ct.nii.gz"
    nib.save(nib.Nifti1Image(data, img.affine, header), str(bad))
    ckpt, out = runs["volume"] / "checkpoints" / "last.pt", tmp_path / "pred.nii.gz"
    msg = one_line(capsys, ["predict", bad, "--checkpoint", ckpt, "--out", out])
    assert msg == (f"{bad}: 4000 of {data.size} voxels are NaN or infinite (the first at index (10, 10, 5)); "
                   "expected finite intensities: repair the image, or set data.volume.nonfinite=zero to replace "
                   "them with 0")
    assert not out.exists()
    capsys.readouterr()
    assert main(["predict", str(bad), "--checkpoint", str(ckpt), "--out", str(out), "data.volume.nonfinite=zero"]) == 0
    assert f"{bad}: 4000 NaN or infinite voxels replaced with 0 (data.volume.nonfinite=zero)" in caplog.text
    clean = tmp_path / "clean.nii.gz"
    data[10:30, 10:30, 5:15] = 0
    nib.save(nib.Nifti1Image(data, img.affine, header), str(clean))
    assert main(["predict", str(clean), "--checkpoint", str(ckpt), "--out", str(tmp_path / "p2.nii.gz")]) == 0
    assert np.array_equal(np.asarray(nib.load(str(out)).dataobj), np.asarray(nib.load(str(tmp_path / "p2.nii.gz"))
                                                                              .dataobj))  # the rule: NaN -> 0


def test_divergence_stops_in_one_line_and_the_last_good_checkpoint_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    common = ["train", "timesformer", "--out", out, "--workers", "0", "--batch-size", "4", "--epochs", "1",
              "model.overrides.depth=1", "train.checkpoint_every=1", "train.sched.warmup_steps=0"]
    msg = one_line(capsys, [*common, "train.optim.lr=1e6"])
    last = out / "checkpoints" / "last.pt"
    good = torch.load(last, weights_only=True)
    # Which check fires first depends on the CPU's kernels (AVX2: the loss is NaN; AVX-512: Adam's exp_avg_sq
    # overflows to inf one step before the loss does); either way the message names it and nothing is saved.
    cause = msg.split("): ", 1)[1].split("; nothing non-finite was saved")[0]
    assert msg.startswith("training diverged at step ") and "; nothing non-finite was saved" in msg, msg
    assert cause == "the training loss is nan" or cause.startswith("non-finite values in "), cause
    assert f"the last good checkpoint is {last} (step {good['step']}): continue from it with --resume" in msg
    assert all(torch.isfinite(v).all() for v in good["model"].values() if v.is_floating_point())
    # Resuming continues from that checkpoint. Its weights come from steps at lr=1e6: on some CPUs the next steps
    # recover, on others (AVX-512) Adam's second moment overflows again; either way the run goes on from there.
    capsys.readouterr()
    rc = main([str(a) for a in [*common, "train.optim.lr=1e-3", "--resume", "--max-steps", good["step"] + 2]])
    if rc == 0:
        assert torch.load(last, weights_only=True)["step"] == good["step"] + 2
    else:
        again = capsys.readouterr().err.strip()
        assert rc == 2 and "\n" not in again, again
        assert int(again.split("training diverged at step ")[1].split(" ")[0]) > good["step"], again


def test_a_position_embedding_of_another_grid_names_the_file_and_the_grid(runs, video, tmp_path, capsys):
    model = load_pretrained(runs["video"] / "checkpoints" / "last.pt")
    sd = {k: v.clone() for k, v in model.state_dict().items()}
    sd["pos_embed"] = sd["pos_embed"][:, :10]
    from safetensors.torch import save_file

    from spatiotemporal.models import model_spec

    bad = tmp_path / "bad.safetensors"
    save_file(sd, str(bad), metadata={"spatiotemporal": json.dumps(model_spec(model))})
    assert one_line(capsys, ["predict", video, "--checkpoint", bad]) == (
        f"{bad}: pos_embed has 10 slots; expected 1 prefix slot(s) + a 4x4 grid = 17 (img_size 32 / patch 8); it would "
        "fit a 3x3 grid")
