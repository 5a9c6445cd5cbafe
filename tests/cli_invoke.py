"""Run a ``tfcxr`` command in-process and check its exit code (``expect=None``: any)."""

from click.testing import CliRunner

from tfcxr.cli import main


def invoke(*args, expect: int | None = 0):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert expect is None or result.exit_code == expect, result.output
    return result
