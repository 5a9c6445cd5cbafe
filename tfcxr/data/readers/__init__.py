"""Dataset readers: each turns a dataset as shipped into a ``Manifest``.

``read_dataset(name, root, **options)`` dispatches through the registry; importing this package
registers every reader.
"""

from tfcxr.data.readers import chexpert, generic, nih, padchest  # noqa: F401  (registration)
from tfcxr.data.readers.base import dataset_names, get_reader


def read_dataset(name: str, root, **options):
    return get_reader(name).read(root, **options)


__all__ = ["dataset_names", "get_reader", "read_dataset"]
