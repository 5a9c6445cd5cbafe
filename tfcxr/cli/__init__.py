"""The ``tfcxr`` command line: a thin click layer over the Python API.

Each command lives in a module of this package that registers itself on ``main``; errors a user
can act on (``TfcxrError``) are printed as one line without a traceback.
"""

import importlib

import click

from tfcxr.version import __version__
from tfcxr.errors import TfcxrError

COMMAND_MODULES = ("data", "models", "port", "train", "export", "evaluate", "explain", "predict")


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except TfcxrError as e:
            raise click.ClickException(str(e)) from None


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfcxr")
def main():
    """Distil, quantize, explain and export chest X-ray classifiers for phones."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"tfcxr.cli.{_name}")
