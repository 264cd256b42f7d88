"""Kinetics-style split CSVs: separators, paths, class names, error messages."""

from pathlib import Path

import pytest

from spatiotemporal.data.video import (
    VideoCSVError,
    VideoDataConfig,
    infer_class_names,
    read_class_file,
    read_video_csv,
    resolve_class_names,
)


def test_space_and_comma_separators_relative_and_absolute(tmp_path: Path):
    csv = tmp_path / "train.csv"
    abs_path = tmp_path / "elsewhere" / "c.mp4"
    csv.write_text(f"a/x.mp4 0\n\nb/with space.mp4,2\n{abs_path},1\n  a/y.mp4   1  \n")
    samples, names = read_video_csv(csv, root=tmp_path / "videos")
    assert samples == [
        (tmp_path / "videos" / "a/x.mp4", 0),
        (tmp_path / "videos" / "b/with space.mp4", 2),
        (abs_path, 1),
        (tmp_path / "videos" / "a/y.mp4", 1),
    ]
    assert names == ["0", "1", "2"]
    # root defaults to the CSV's directory
    samples, _ = read_video_csv(csv)
    assert samples[0][0] == tmp_path / "a/x.mp4"


def test_commas_in_paths_and_quoted_paths(tmp_path: Path):
    csv = tmp_path / "val.csv"
    csv.write_text('odd,name.mp4,1\n"quoted, path.mp4",0\n')
    samples, _ = read_video_csv(csv, root=tmp_path)
    assert samples == [(tmp_path / "odd,name.mp4", 1), (tmp_path / "quoted, path.mp4", 0)]


def test_class_names_with_and_without_class_file(tmp_path: Path):
    (tmp_path / "classes.txt").write_text("abseiling\nair drumming\nzumba\n")
    (tmp_path / "train.csv").write_text("v1.mp4,zumba\nv2.mp4,air drumming\nv3.mp4 1\n")
    samples, names = read_video_csv(tmp_path / "train.csv", class_names=tmp_path / "classes.txt")
    assert names == ["abseiling", "air drumming", "zumba"]
    assert [label for _, label in samples] == [2, 1, 1]
    # no class file: sorted names over all split files, so train and val agree
    (tmp_path / "classes.txt").unlink()
    (tmp_path / "train.csv").write_text("v1.mp4,zumba\nv2.mp4,air drumming\n")
    (tmp_path / "val.csv").write_text("v4.mp4,abseiling\n")
    names = resolve_class_names(tmp_path, VideoDataConfig())
    assert names == ["abseiling", "air drumming", "zumba"]
    samples, _ = read_video_csv(tmp_path / "val.csv", class_names=names)
    assert samples[0][1] == 0


def test_header_line_is_skipped(tmp_path: Path):
    csv = tmp_path / "test.csv"
    csv.write_text("path,label\na.mp4,3\n")
    samples, names = read_video_csv(csv)
    assert samples == [(tmp_path / "a.mp4", 3)] and names == ["0", "1", "2", "3"]


@pytest.mark.parametrize(
    "content, lineno, fragment",
    [
        ("a.mp4 0\nb.mp4 1\nonly_a_path.mp4\n", 3, "expected 'path label'"),
        ("a.mp4 0\n\nx y z\n", 3, "expected 'path label'"),
        ("a.mp4 0\nb.mp4 -1\n", 2, "negative label"),
        ("a.mp4 0\nb.mp4 dancing\n", 2, "mix integers and class names"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, content: str, lineno: int, fragment: str):
    csv = tmp_path / "train.csv"
    csv.write_text(content)
    with pytest.raises(VideoCSVError) as info:
        read_video_csv(csv)
    assert isinstance(info.value, ValueError)
    assert f"{csv}:{lineno}:" in str(info.value) and fragment in str(info.value)


def test_unknown_name_and_out_of_range_label_with_class_file(tmp_path: Path):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    csv = tmp_path / "train.csv"
    csv.write_text("x.mp4 a\ny.mp4 c\n")
    with pytest.raises(VideoCSVError, match=r"train\.csv:2: unknown class name 'c'"):
        read_video_csv(csv, class_names=tmp_path / "classes.txt")
    csv.write_text("x.mp4 a\ny.mp4 b\nz.mp4 2\n")
    with pytest.raises(VideoCSVError, match=r"train\.csv:3: label 2 out of range for 2 classes"):
        read_video_csv(csv, class_names=["a", "b"])


def test_class_file_errors_and_missing_csv(tmp_path: Path):
    bad = tmp_path / "classes.txt"
    bad.write_text("a\n\nb\n")
    with pytest.raises(VideoCSVError, match=r"classes\.txt:2: empty class name"):
        read_class_file(bad)
    bad.write_text("a\nb\na\n")
    with pytest.raises(VideoCSVError, match=r"classes\.txt:3: duplicate class name 'a'"):
        read_class_file(bad)
    bad.write_text("a\nb\n\n")  # trailing blank lines are fine
    assert read_class_file(bad) == ["a", "b"]
    with pytest.raises(FileNotFoundError, match="split file not found"):
        infer_class_names([tmp_path / "nope.csv"])
