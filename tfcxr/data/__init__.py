"""Data: dataset readers into one ``Manifest`` shape, image decoding and the ``tf.data`` pipeline.

    from tfcxr.data import read_dataset, build_dataset
    manifest = read_dataset("nih", "/data/ChestX-ray14")            # or "chexpert", "padchest", "csv", "demo"
    train = build_dataset(manifest.split("train"), spec, training=True, batch_size=32)
"""

from tfcxr.data.manifest import Manifest
from tfcxr.data.policies import UncertaintyPolicy
from tfcxr.data.readers import dataset_names, read_dataset

__all__ = ["Manifest", "UncertaintyPolicy", "build_dataset", "dataset_names", "load_image",
           "read_dataset"]


def __getattr__(name):
    # The image and pipeline modules import TensorFlow; load them only when asked for.
    if name == "build_dataset":
        from tfcxr.data.pipeline import build_dataset

        return build_dataset
    if name == "load_image":
        from tfcxr.data.images import load_image

        return load_image
    raise AttributeError(f"module 'tfcxr.data' has no attribute {name!r}")
