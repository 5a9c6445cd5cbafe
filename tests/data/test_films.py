"""Collecting films from files, folders and glob patterns."""

from pathlib import Path

import pytest

from tfcxr.data.films import collect_films
from tfcxr.errors import DatasetError


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


@pytest.fixture
def tree(tmp_path):
    for name in ("a/1.png", "a/2.JPG", "a/3.dcm", "a/notes.txt", "a/.hidden.png", "a/sub/4.jpeg",
                 "a/sub/.cache/5.png", "b/scan", "b/6.dicom"):
        touch(tmp_path / name)
    return tmp_path


def test_folders_files_and_globs(tree):
    a = tree / "a"
    assert collect_films([a]) == [a / "1.png", a / "2.JPG", a / "3.dcm"]
    assert collect_films([a], recursive=True) == [a / "1.png", a / "2.JPG", a / "3.dcm",
                                                   a / "sub" / "4.jpeg"]
    # a file named explicitly is kept whatever its suffix (DICOMs often have none)
    assert collect_films([tree / "b" / "scan", tree / "b"]) == [tree / "b" / "scan",
                                                                tree / "b" / "6.dicom"]
    assert collect_films([str(tree / "**" / "*.png")]) == [a / "1.png"]
    assert collect_films([str(tree / "a" / "*")]) == [a / "1.png", a / "2.JPG", a / "3.dcm",
                                                      a / "notes.txt"]


def test_duplicates_kept_once_in_first_place(tree):
    a = tree / "a"
    assert collect_films([a / "3.dcm", a, str(a / "*.png")]) == [a / "3.dcm", a / "1.png",
                                                                 a / "2.JPG"]


def test_inputs_that_name_nothing_are_errors(tree):
    with pytest.raises(DatasetError, match="missing.png: file or folder not found"):
        collect_films([tree / "missing.png"])
    with pytest.raises(DatasetError, match=r"\*.gif: the pattern matches no file"):
        collect_films([str(tree / "*.gif")])
    (tree / "empty" / "deeper").mkdir(parents=True)
    touch(tree / "empty" / "deeper" / "7.png")
    with pytest.raises(DatasetError, match="no image files.*--recursive"):
        collect_films([tree / "empty"])
    assert collect_films([tree / "empty"], recursive=True) == [tree / "empty" / "deeper" / "7.png"]
    with pytest.raises(DatasetError, match="no films given"):
        collect_films([])
