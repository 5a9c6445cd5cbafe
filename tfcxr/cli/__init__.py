"""The ``tfcxr`` command line: a thin click layer over the Python API."""

import click

from tfcxr import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tfcxr")
def main():
    """Distil, quantize, explain and export chest X-ray classifiers for phones."""
