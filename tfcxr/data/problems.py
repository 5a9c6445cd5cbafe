"""Collecting what is wrong with a dataset, so one pass reports every problem.

Readers log problems here instead of raising at the first one. ``tfcxr data check`` prints the
whole log; training-time readers call ``raise_or_skip`` which raises one clear error (naming the
file and the problem) unless the user asked to skip bad rows, in which case it says how many.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tfcxr.errors import DatasetError

log = logging.getLogger("tfcxr.data")

MAX_EXAMPLES = 5


@dataclass
class Problem:
    kind: str  # e.g. "missing-image", "unknown-label", "bad-column", "patient-leak"
    path: str  # the file the problem is in (the CSV, the image, the split list)
    message: str
    count: int = 1  # how many rows or files it affects
    severity: str = "error"  # "error": the dataset is not usable as is; "warning": it is
    examples: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"{self.path}: {self.message}"
        if self.examples:
            more = f" (+{self.count - len(self.examples)} more)" if self.count > len(self.examples) else ""
            text += f" [e.g. {', '.join(self.examples)}{more}]"
        return text

    def to_dict(self) -> dict:
        return asdict(self)


class ProblemLog:
    """Problems found so far. ``collect=True`` (used by ``tfcxr data check``) never raises."""

    def __init__(self, collect: bool = False):
        self.collect = collect
        self.problems: list[Problem] = []

    def add(self, kind: str, path, message: str, *, count: int = 1, severity: str = "error",
            examples=()) -> None:
        self.problems.append(Problem(kind, str(path), message, int(count), severity,
                                     [str(e) for e in list(examples)[:MAX_EXAMPLES]]))

    def warn(self, kind: str, path, message: str, **kwargs) -> None:
        self.add(kind, path, message, severity="warning", **kwargs)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def raise_or_skip(self, skip_bad: bool, skipped_rows: int) -> str | None:
        """Raise on the first error unless ``skip_bad``; return a note on what was skipped."""
        if not self.errors:
            return None
        if not skip_bad and not self.collect:
            first = self.errors[0]
            others = len(self.errors) - 1
            tail = (f" ({others} more problem(s); run `tfcxr data check` to list them all, or pass "
                    "--skip-bad to drop the affected rows)") if others else (
                " (pass --skip-bad to drop the affected rows)")
            raise DatasetError(Path(first.path), str(first).split(": ", 1)[1] + tail)
        note = f"skipped {skipped_rows} row(s) with problems: " + "; ".join(
            f"{p.message} x{p.count}" for p in self.errors)
        if not self.collect:  # a check lists the problems itself
            log.warning(note)
        return note
