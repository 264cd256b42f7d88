"""data_recipes/kinetics/prepare_kinetics.py on a tiny fake Kinetics download (real mp4 files)."""

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from spatiotemporal.data.labels_csv import read_labels_csv
from spatiotemporal.data.video import VideoClipDataset, VideoDataConfig, open_video, write_mp4

SCRIPT = Path(__file__).resolve().parents[2] / "data_recipes" / "kinetics" / "prepare_kinetics.py"
CFG = VideoDataConfig(num_frames=2, sampling_rate=2, train_jitter_scales=(32, 32), crop_size=32)


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("prepare_kinetics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["prepare_kinetics"] = module  # multiprocessing pickles _process by module name
    spec.loader.exec_module(module)
    return module


def _video(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = np.random.default_rng(seed).integers(0, 256, (6, 48, 64, 3), dtype=np.uint8)
    write_mp4(path, frames, intra_only=False)


@pytest.fixture
def download(tmp_path: Path) -> tuple[Path, Path]:
    """Official-style annotations + CVDF-named clips; one clip missing, one corrupt, one unlabelled."""
    ann = tmp_path / "annotations"
    ann.mkdir()
    header = "label,youtube_id,time_start,time_end,split,is_cc\n"
    (ann / "train.csv").write_text(
        header
        + "air drumming,aaa,10,20,train,0\n"
        + "abseiling,bbb,0,10,train,0\n"
        + "zumba,ccc,5,15,train,0\n"
        + "zumba,ddd,7,17,train,0\n"  # missing from the download
    )
    (ann / "validate.csv").write_text(header + "abseiling,eee,1,11,validate,0\nzumba,fff,2,12,validate,0\n")
    (ann / "test.csv").write_text(header + ",ggg,3,13,test,0\nair drumming,hhh,4,14,test,0\n")
    src = tmp_path / "k400"
    for i, (split, key) in enumerate(
        [("train", "aaa_000010_000020"), ("train", "bbb_000000_000010"), ("train", "ccc_000005_000015"),
         ("val", "eee_000001_000011"), ("test", "ggg_000003_000013"), ("test", "hhh_000004_000014")]
    ):
        _video(src / split / f"{key}.mp4", i)
    (src / "val" / "fff_000002_000012.mp4").write_bytes(b"\x00" * 500)  # corrupt download
    return src, ann


def test_annotation_layout_index_in_place(recipe, download, tmp_path):
    src, ann = download
    clips = recipe.clips_from_annotations(src, ann)
    assert recipe.class_list(clips) == ["abseiling", "air drumming", "zumba"]
    dst = tmp_path / "out"
    report = recipe.prepare(dst, clips, resize=False, workers=2, log=lambda *a: None)
    assert (dst / "classes.txt").read_text() == "abseiling\nair drumming\nzumba\n"
    assert report["missing"] == ["train/ddd_000007_000017"]
    assert len(report["broken"]) == 1 and report["broken"][0].startswith("val/fff_000002_000012")
    assert report["unlabelled"] == ["test/ggg_000003_000013 (None)"]
    assert json.loads((dst / "report.json").read_text())["splits"]["train"] == {"listed": 4, "written": 3}
    assert (dst / "missing.txt").read_text() == "train/ddd_000007_000017\n"
    train, names = read_labels_csv(dst / "train.csv", root=dst, class_names=dst / "classes.txt")
    assert [(p.name, label) for p, label in train] == [
        ("aaa_000010_000020.mp4", 1), ("bbb_000000_000010.mp4", 0), ("ccc_000005_000015.mp4", 2)]
    assert all(p.is_absolute() and p.is_file() for p, _ in train)
    # the output is a dataset root the loader reads as is
    ds = VideoClipDataset(dst, "val", CFG)
    assert len(ds) == 1 and ds[0]["video"].shape == (3, 2, 32, 32) and ds[0]["label"] == 0


def test_folder_layout_with_spaces_in_class_names(recipe, tmp_path):
    src = tmp_path / "folders"
    _video(src / "train" / "air drumming" / "clip one.mp4", 0)
    _video(src / "train" / "abseiling" / "x.mp4", 1)
    _video(src / "val" / "air drumming" / "y.mp4", 2)
    (src / "train" / "abseiling" / "notes.txt").write_text("not a video")
    clips = recipe.clips_from_folders(src)
    assert [c.key for c in clips["train"]] == ["abseiling__x", "air_drumming__clip_one"]
    dst = tmp_path / "out"
    recipe.prepare(dst, clips, resize=False, workers=1, log=lambda *a: None)
    train, names = read_labels_csv(dst / "train.csv", class_names=dst / "classes.txt")
    assert names == ["abseiling", "air drumming"]
    assert [(p.name, label) for p, label in train] == [("x.mp4", 0), ("clip one.mp4", 1)]  # comma form
    assert VideoClipDataset(dst, "train", CFG)[1]["label"] == 1


def test_bad_annotation_header_names_the_file(recipe, tmp_path):
    bad = tmp_path / "train.csv"
    bad.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(ValueError, match=r"train\.csv:1: expected a header"):
        recipe.read_annotations(bad, "train")


def test_ffmpeg_step(recipe, download, tmp_path, capsys):
    src, ann = download
    clips = recipe.clips_from_annotations(src, ann)
    # a missing ffmpeg is a clear error, from the function and from the command line
    with pytest.raises(recipe.FFmpegMissingError, match="ffmpeg not found"):
        recipe.prepare(tmp_path / "x", clips, resize=True, ffmpeg="no-such-ffmpeg-binary")
    rc = recipe.main(["--src", str(src), "--annotations", str(ann), "--dst", str(tmp_path / "y"),
                      "--ffmpeg", "no-such-ffmpeg-binary"])
    assert rc == 2 and "ffmpeg not found" in capsys.readouterr().err
    if shutil.which("ffmpeg"):  # the conversion itself needs a real ffmpeg
        dst = tmp_path / "resized"
        report = recipe.prepare(dst, clips, resize=True, short_side=40, workers=2, log=lambda *a: None)
        assert report["splits"]["train"]["written"] == 3
        with open_video(dst / "train" / "aaa_000010_000020.mp4") as v:
            assert v.get_frames([0]).shape == (1, 40, 52, 3)  # 48x64 -> short side 40, even long side
    else:
        cmd = recipe.ffmpeg_command("ffmpeg", Path("a.webm"), Path("b.mp4"), 320)
        assert "scale='if(gt(iw,ih),-2,320)':'if(gt(iw,ih),320,-2)'" in cmd and cmd[-1] == "b.mp4"
