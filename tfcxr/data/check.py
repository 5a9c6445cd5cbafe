"""``tfcxr data check``: every problem of a dataset in one pass, and whether it is usable."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tfcxr.data.images import load_image
from tfcxr.data.manifest import Manifest
from tfcxr.data.problems import Problem, ProblemLog
from tfcxr.data.readers import read_dataset
from tfcxr.errors import DatasetError


@dataclass
class CheckReport:
    dataset: str
    root: str
    manifest: Manifest | None
    problems: list[Problem]
    images_decoded: int

    @property
    def usable(self) -> bool:
        return self.manifest is not None and len(self.manifest) > 0 and not any(
            p.severity == "error" for p in self.problems)

    def to_dict(self) -> dict:
        m = self.manifest
        summary = {"dataset": self.dataset, "root": self.root, "usable": self.usable,
                   "images_decoded": self.images_decoded,
                   "problems": [p.to_dict() for p in self.problems]}
        if m is not None:
            summary.update({
                "images": len(m), "patients": len(set(m.patient_ids)), "labels": list(m.label_names),
                "splits": {s: int(n) for s, n in sorted(Counter(m.splits).items())},
                "views": {v or "unknown": int(n) for v, n in sorted(Counter(m.views).items())},
                "label_counts": m.label_counts().to_dict(orient="records"),
                "notes": list(m.notes),
            })
        return summary


def _decode_problems(manifest: Manifest, workers: int, progress: bool) -> list[tuple[str, str]]:
    def try_decode(path):
        try:
            load_image(path)
            return None
        except DatasetError as e:
            return path, e.problem
        except Exception as e:  # noqa: BLE001 - any decoder failure is a finding, not a crash
            return path, f"cannot decode: {type(e).__name__}: {e}"

    paths = [p for p in manifest.paths if Path(p).is_file()]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = pool.map(try_decode, paths)
        if progress:
            from tqdm import tqdm

            results = tqdm(results, total=len(paths), desc="decoding images", unit="img", disable=None)
        return [r for r in results if r is not None]


def check_dataset(dataset: str, root, *, decode_images: bool = True, workers: int = 4,
                  progress: bool = False, **options) -> CheckReport:
    """Read the dataset collecting (not raising) problems, then decode every image it lists."""
    log = ProblemLog(collect=True)
    manifest = None
    try:
        manifest = read_dataset(dataset, root, log=log, **options)
    except DatasetError as e:  # a problem the reader cannot continue past (e.g. no CSV)
        if not log.errors:
            log.add("unreadable", e.path or root, e.problem)
    decoded = 0
    if manifest is not None and decode_images:
        failures = _decode_problems(manifest, workers, progress)
        decoded = len(manifest) - len(failures)
        by_problem: dict[str, list[str]] = {}
        for path, problem in failures:
            by_problem.setdefault(problem, []).append(path)
        for problem, paths in by_problem.items():
            log.add("bad-image", paths[0], problem, count=len(paths), examples=paths[1:])
    if manifest is not None and len(manifest) == 0:
        log.add("empty", root, "no usable images")
    return CheckReport(dataset, str(root), manifest, log.problems, decoded)
