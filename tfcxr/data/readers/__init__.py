"""Dataset readers: each turns a dataset as shipped into a ``Manifest``.

``read_dataset(name, root, **options)`` dispatches through the registry; importing this package
registers every reader.
"""

from pathlib import Path

from tfcxr.data.readers import chexpert, generic, nih, padchest  # noqa: F401  (registration)
from tfcxr.data.readers.base import dataset_names, get_reader
from tfcxr.errors import DatasetError


def read_dataset(name: str, root, **options):
    """Read dataset ``name`` (see ``dataset_names()``) from the folder ``root`` into a Manifest."""
    reader = get_reader(name)
    if root is not None and not Path(root).is_dir():
        raise DatasetError(root, f"dataset folder not found (reading {name!r})")
    return reader.read(root, **options)


__all__ = ["dataset_names", "get_reader", "read_dataset"]
