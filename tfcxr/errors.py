"""Exceptions a user can act on, raised at the boundaries (readers, CLI, exporters)."""

from __future__ import annotations

from pathlib import Path


class TfcxrError(Exception):
    """Base class: the CLI prints the message without a traceback and exits non-zero."""


class DatasetError(TfcxrError):
    """A dataset file is missing, unreadable or malformed.

    The message always names the file and the problem.
    """

    def __init__(self, path: str | Path | None, problem: str):
        self.path = None if path is None else Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}" if path is not None else problem)


class ImageDecodeError(DatasetError):
    """One image file could not be decoded."""


class ConfigError(TfcxrError):
    """A configuration file or value is invalid."""
