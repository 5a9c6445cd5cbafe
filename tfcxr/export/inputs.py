"""The images both sides of an export see: uint8 pixels, as an app holds them.

``load_pixels`` decodes and resizes a manifest's films with the training pipeline (so the phone
model is checked on what the Keras model was trained on) and rounds them to uint8, the exact
values an app copies from a bitmap. ``keras_logits`` feeds the same pixels to a Keras model in
the form it takes: raw pixels for an app model, ``spec``-normalised images for a network.
"""

from __future__ import annotations

import numpy as np

from tfcxr.backend import keras, tf
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.export.app_model import PIXEL_RANGE, is_app_model
from tfcxr.preprocessing import PreprocessingSpec


def pixel_spec(spec: PreprocessingSpec) -> PreprocessingSpec:
    """The pipeline spec whose "normalisation" yields pixels in [0, 255] (what app models take)."""
    return PreprocessingSpec(spec.image_size, spec.channels, (0.0,) * spec.channels,
                             (1.0 / PIXEL_RANGE[1],) * spec.channels, spec.resize_method)


def load_pixels(manifest: Manifest, spec: PreprocessingSpec, batch_size: int = 32) -> np.ndarray:
    """[N, S, S, C] uint8 pixels of every row of ``manifest``, in manifest order."""
    ds = build_dataset(manifest, pixel_spec(spec), training=False, batch_size=batch_size)
    batches = [images.numpy() for images, _, _ in ds]
    pixels = np.concatenate(batches) if batches else np.zeros((0, *spec.input_shape), np.float32)
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def normalize(pixels: np.ndarray, spec: PreprocessingSpec) -> np.ndarray:
    """Pixels in [0, 255] to the normalised input of a network trained with ``spec``."""
    images = np.asarray(pixels, np.float32) / PIXEL_RANGE[1]
    return ((images - np.float32(spec.mean)) / np.float32(spec.std)).astype(np.float32)


def keras_logits(model: keras.Model, pixels: np.ndarray, spec: PreprocessingSpec,
                 batch_size: int = 32) -> np.ndarray:
    """Logits of a Keras network or app model (QAT or not) for uint8 ``pixels``."""
    inputs = np.asarray(pixels, np.float32) if is_app_model(model) else normalize(pixels, spec)
    ds = tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
    return np.concatenate([model(batch, training=False).numpy() for batch in ds])


def representative_dataset(pixels: np.ndarray):
    """The converter's calibration callable: one float32 [1, S, S, C] image per step."""
    def generate():
        for image in pixels:
            yield [np.asarray(image[None], np.float32)]
    return generate
