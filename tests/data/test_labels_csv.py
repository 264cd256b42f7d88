"""The one ``path,label`` reader: separators, headers, labels, BOM, class files, errors; video and image
datasets read the same file the same way."""

from pathlib import Path

import pytest

from spatiotemporal.data.image import CsvImageDataset
from spatiotemporal.data.labels_csv import (
    LabelsCSVError,
    infer_class_names,
    read_class_file,
    read_labels_csv,
)
from spatiotemporal.data.video import VideoClipDataset, VideoDataConfig, resolve_class_names

BOM = "\ufeff"


def test_space_and_comma_separators_relative_and_absolute(tmp_path: Path):
    csv = tmp_path / "train.csv"
    abs_path = tmp_path / "elsewhere" / "c.mp4"
    csv.write_text(f"a/x.mp4 0\n\nb/with space.mp4,2\n{abs_path},1\n  a/y.mp4   1  \n# a comment\na/z.mp4\t0\n")
    samples, names = read_labels_csv(csv, root=tmp_path / "videos")
    assert samples == [
        (tmp_path / "videos" / "a/x.mp4", 0),
        (tmp_path / "videos" / "b/with space.mp4", 2),
        (abs_path, 1),
        (tmp_path / "videos" / "a/y.mp4", 1),
        (tmp_path / "videos" / "a/z.mp4", 0),
    ]
    assert names == ["0", "1", "2"]
    samples, _ = read_labels_csv(csv)  # root defaults to the file's folder
    assert samples[0][0] == tmp_path / "a/x.mp4"


def test_quoted_paths_and_names_with_commas(tmp_path: Path):
    csv = tmp_path / "val.csv"
    csv.write_text('"odd,name.mp4",1\n"quoted, path.mp4",0\n')
    samples, _ = read_labels_csv(csv, root=tmp_path)
    assert samples == [(tmp_path / "odd,name.mp4", 1), (tmp_path / "quoted, path.mp4", 0)]
    csv.write_text('a.mp4,"dancing, ballet"\nb.mp4,zumba\n')
    samples, names = read_labels_csv(csv)
    assert names == ["dancing, ballet", "zumba"] and [label for _, label in samples] == [0, 1]


@pytest.mark.parametrize("header", ["path,label", "path label", "Video,Class", "filename,label", "image_path,target"])
def test_header_line_is_skipped(tmp_path: Path, header: str):
    csv = tmp_path / "test.csv"
    csv.write_text(f"{header}\na.mp4,3\n")
    samples, names = read_labels_csv(csv)
    assert samples == [(tmp_path / "a.mp4", 3)] and names == ["0", "1", "2", "3"]


def test_utf8_bom_keeps_the_first_sample(tmp_path: Path):
    csv = tmp_path / "train.csv"
    csv.write_text(BOM + "first.mp4 1\nsecond.mp4 0\n", encoding="utf-8")
    samples, _ = read_labels_csv(csv)
    assert samples == [(tmp_path / "first.mp4", 1), (tmp_path / "second.mp4", 0)]
    csv.write_text(BOM + "path,label\nfirst.mp4,b\n", encoding="utf-8")  # a BOM before a header too
    assert read_labels_csv(csv) == ([(tmp_path / "first.mp4", 0)], ["b"])
    (tmp_path / "classes.txt").write_text(BOM + "a\nb\n", encoding="utf-8")
    assert read_class_file(tmp_path / "classes.txt") == ["a", "b"]


def test_class_names_with_and_without_class_file(tmp_path: Path):
    (tmp_path / "classes.txt").write_text("abseiling\nair drumming\nzumba\n")
    (tmp_path / "train.csv").write_text("v1.mp4,zumba\nv2.mp4,air drumming\nv3.mp4 1\n")
    samples, names = read_labels_csv(tmp_path / "train.csv", class_names=tmp_path / "classes.txt")
    assert names == ["abseiling", "air drumming", "zumba"]
    assert [label for _, label in samples] == [2, 1, 1]  # with a class list, names and indices mix
    # no class file: sorted names over all split files, so train and val agree
    (tmp_path / "classes.txt").unlink()
    (tmp_path / "train.csv").write_text("v1.mp4,zumba\nv2.mp4,air drumming\n")
    (tmp_path / "val.csv").write_text("v4.mp4,abseiling\n")
    names = resolve_class_names(tmp_path, VideoDataConfig())
    assert names == ["abseiling", "air drumming", "zumba"]
    samples, _ = read_labels_csv(tmp_path / "val.csv", class_names=names)
    assert samples[0][1] == 0


def _write(root: Path, text: str, **kwargs) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.csv").write_text(text, **kwargs)
    return root


@pytest.mark.parametrize(
    "text",
    [
        BOM + "path,label\n# comment\nclips/a b.mp4,dog\nclips/c.mp4 cat\n\n/abs/d.mp4,dog\n",
        "clips/x.mp4 2\nclips/y.mp4,0\n",
    ],
)
def test_video_and_image_datasets_read_the_same_file_the_same_way(tmp_path: Path, text: str):
    root = _write(tmp_path, text, encoding="utf-8")
    video = VideoClipDataset(root, "train", VideoDataConfig())
    image = CsvImageDataset(root / "train.csv")
    assert [(str(p), label) for p, label in video.samples] == image.samples
    assert video.class_names == image.class_names and len(video) == len(image) == text.count(".mp4")


@pytest.mark.parametrize(
    "content, lineno, fragment",
    [
        ("a.mp4 0\nb.mp4 1\nonly_a_path.mp4\n", 3, "expected 'path label' or 'path,label'"),
        ("a.mp4 0\n\nx y z\n", 3, "use the 'path,label' form for a path or class name with spaces"),
        ("a.png,0,extra\n", 1, "write a path or class name that holds commas in double quotes"),
        ("odd,name.mp4,1\n", 1, "expected 'path label' or 'path,label'"),
        (",0\n", 1, "expected 'path label' or 'path,label'"),
        ('a.png,0\n"b.png,1\n', 2, "malformed CSV quoting"),
        ("a.mp4 0\nb.mp4 -1\n", 2, "negative label -1; expected a class index >= 0 or a name"),
        ("a.mp4 0\nb.mp4 dancing\n", 2, "mixes integers and class names"),
        ("a.mp4 cat\nb.mp4 1\n", 2, "the labels are names from"),
        ("# only a comment\n", None, "no samples; expected one 'path label' or 'path,label' per line"),
    ],
)
def test_malformed_file_names_file_and_line_in_both_datasets(tmp_path: Path, content, lineno, fragment):
    root = _write(tmp_path, content)
    csv = root / "train.csv"
    where = f"{csv}:{lineno}:" if lineno else f"{csv}:"
    for read in (read_labels_csv, CsvImageDataset, lambda p: VideoClipDataset(p.parent, "train")):
        with pytest.raises(LabelsCSVError) as info:
            read(csv)
        assert isinstance(info.value, ValueError)
        assert str(info.value).startswith(where) and fragment in str(info.value), str(info.value)


def test_unknown_name_and_out_of_range_label_with_class_list(tmp_path: Path):
    (tmp_path / "classes.txt").write_text("a\nb\n")
    csv = tmp_path / "train.csv"
    csv.write_text("x.mp4 a\ny.mp4 c\n")
    with pytest.raises(LabelsCSVError, match=r"train\.csv:2: unknown class name 'c'; expected one of the 2 "
                                            r"classes \(a, b\) or a class index"):
        read_labels_csv(csv, class_names=tmp_path / "classes.txt")
    csv.write_text("x.mp4 a\ny.mp4 b\nz.mp4 2\n")
    with pytest.raises(LabelsCSVError, match=r"train\.csv:3: label 2 out of range; expected a class index in 0..1"):
        read_labels_csv(csv, class_names=["a", "b"])
    with pytest.raises(LabelsCSVError, match=r"train\.csv:3: label 2 out of range"):
        CsvImageDataset(csv, class_names=["a", "b"])  # a validation list checked against the training classes


def test_class_file_errors_and_missing_files(tmp_path: Path):
    bad = tmp_path / "classes.txt"
    bad.write_text("a\n\nb\n")
    with pytest.raises(LabelsCSVError, match=r"classes\.txt:2: empty class name"):
        read_class_file(bad)
    bad.write_text("a\nb\na\n")
    with pytest.raises(LabelsCSVError, match=r"classes\.txt:3: duplicate class name 'a'"):
        read_class_file(bad)
    bad.write_text("a\nb\n\n")  # trailing blank lines are fine
    assert read_class_file(bad) == ["a", "b"]
    missing = tmp_path / "nope.csv"
    for call in (lambda: infer_class_names([missing]), lambda: read_labels_csv(missing),
                 lambda: CsvImageDataset(missing)):
        with pytest.raises(FileNotFoundError, match=rf"labels file {missing} does not exist \(expected one "):
            call()


def test_sparse_integer_labels_without_a_class_list_warn_once(tmp_path: Path, caplog):
    (tmp_path / "train.csv").write_text("a.mp4 0\nb.mp4 40\n")
    (tmp_path / "val.csv").write_text("c.mp4 40\n")
    for _ in range(3):  # a run reads the class names several times: one warning
        names = resolve_class_names(tmp_path, VideoDataConfig())
    assert names == [str(i) for i in range(41)]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"{tmp_path / 'train.csv'}, {tmp_path / 'val.csv'}: integer labels 0, 40 (2 distinct) and "
                        "no class list make 41 classes, 39 of which no sample has (a 41-output model); to name the "
                        "classes write a class file (classes.txt: one name per line, line i = label i), or relabel "
                        "the samples 0..1"]
    (tmp_path / "classes.txt").write_text("\n".join(f"c{i}" for i in range(41)) + "\n")
    caplog.clear()
    assert resolve_class_names(tmp_path, VideoDataConfig())[40] == "c40" and not caplog.records


def test_a_file_that_is_not_utf8_names_the_line_and_column(tmp_path: Path):
    (tmp_path / "train.csv").write_bytes(b"a.mp4,cafe\r\nb.mp4,caf\xe9\r\n")
    with pytest.raises(LabelsCSVError, match=r"train\.csv:2: not UTF-8 text \(byte 0xe9 at column 10\); save the "
                                             r"file as UTF-8"):
        read_labels_csv(tmp_path / "train.csv")
    (tmp_path / "classes.txt").write_bytes(b"cafe\nth\xe9\n")
    with pytest.raises(LabelsCSVError, match=r"classes\.txt:2: not UTF-8 text"):
        read_class_file(tmp_path / "classes.txt")
