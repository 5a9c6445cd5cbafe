"""Films named on a command line: files, folders and glob patterns to one ordered list of paths.

``collect_films(["scan.dcm", "clinic/", "ward/**/*.png"], recursive=True)``:

- a file is taken as given, whatever its name (DICOM files often have no suffix); whether it
  decodes is decided later, film by film, so one bad file cannot stop a batch;
- a folder contributes its files whose suffix is an image suffix (``FILM_SUFFIXES``, any case),
  sorted by path; with ``recursive`` its subfolders too; hidden files and folders are left out;
- anything else containing ``*``, ``?`` or ``[`` is a glob pattern (``**`` spans folders), and
  contributes the files it matches, sorted.

A path that does not exist, a folder with no image file and a pattern that matches no file are
errors naming that input: a typo must not quietly score fewer films. A film reached twice (a
file inside a folder that is also named) is kept once, at its first place.
"""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from tfcxr.errors import DatasetError

FILM_SUFFIXES = (".png", ".jpg", ".jpeg", ".dcm", ".dicom")
_GLOB_CHARACTERS = set("*?[")


def collect_films(inputs: Iterable[str | Path], *, recursive: bool = False) -> list[Path]:
    """Every film the inputs name, in the order given (see the module docstring)."""
    films: dict[Path, None] = {}
    for item in inputs:
        for path in _expand(str(item), recursive):
            films.setdefault(path, None)
    if not films:
        raise DatasetError(None, "no films given: name image files, folders or glob patterns")
    return list(films)


def _expand(item: str, recursive: bool) -> list[Path]:
    path = Path(item).expanduser()
    if path.is_dir():
        found = sorted(p for p in (path.rglob("*") if recursive else path.iterdir())
                       if p.is_file() and p.suffix.lower() in FILM_SUFFIXES
                       and not _hidden(p.relative_to(path)))
        if not found:
            hint = "" if recursive else " (--recursive looks into subfolders)"
            raise DatasetError(path, f"no image files ({', '.join(FILM_SUFFIXES)}) in this "
                                     f"folder{hint}")
        return found
    if path.exists():
        return [path]
    if _GLOB_CHARACTERS & set(item):
        found = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        if not found:
            raise DatasetError(item, "the pattern matches no file")
        return found
    raise DatasetError(path, "file or folder not found")


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
