"""grad_cam: standard and guided Grad-CAM, the layer it picks, labels, nested and QAT models."""

import numpy as np
import pytest
from cam_helpers import blob_images
from tf_explain.core.grad_cam import GradCAM

from tfcxr import models
from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.explain.gradcam import grad_cam, gradcam_model
from tfcxr.data.labels import NIH_LABELS as LABELS
from tfcxr.explain.graph import float_twin

SIZE = 128


@pytest.fixture(scope="module")
def images():
    return blob_images(3, SIZE, seed=2)


def _normalized(maps):
    maps = np.maximum(maps, 0)
    peak = maps.max(axis=(-2, -1), keepdims=True)
    return maps / np.where(peak > 0, peak, 1)


def _reference_grad_cam(model, images, layer, labels):
    """The keras-io recipe: alpha = spatial mean of d logit / d A, ReLU(sum alpha A)."""
    grad_model = keras.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape(persistent=True) as tape:
        feature_map, logits = grad_model(images, training=False)
        targets = [logits[:, c] for c in labels]
    maps = []
    for target in targets:
        alpha = tf.reduce_mean(tape.gradient(target, feature_map), axis=(1, 2))
        maps.append(tf.einsum("nhwk,nk->nhw", feature_map, alpha).numpy())
    return _normalized(np.stack(maps, axis=1))


def test_standard_grad_cam_on_the_registry_layer(student, images):
    maps, logits = grad_cam(student, images, return_logits=True)
    assert maps.shape == (3, len(LABELS), 4, 4) and maps.dtype == np.float32
    some = [0, 6, 13]
    np.testing.assert_allclose(maps[:, some],
                               _reference_grad_cam(student, images, "final_expand", some),
                               atol=1e-5)
    np.testing.assert_allclose(logits, student(images).numpy(), atol=1e-6)
    assert 0.0 <= maps.min() and maps.max() == 1.0
    assert gradcam_model(student)[1] == models.get_spec("mobilenet_v3_small").gradcam_layer


def test_guided_is_tf_explains_grad_cam(student, images):
    ours = grad_cam(student, images, label=2, guided=True)[:, 0]
    outputs, grads = GradCAM.get_gradients_and_filters(student, images, "final_expand", 2, True)
    theirs = np.stack([m.numpy() for m in GradCAM.generate_ponderated_output(outputs, grads)])
    np.testing.assert_allclose(ours, _normalized(theirs), atol=1e-6)


def test_labels_by_index_name_list_and_all(student, images):
    every = grad_cam(student, images)
    np.testing.assert_array_equal(grad_cam(student, images, 3), every[:, 3:4])
    picked = grad_cam(student, images, ["Nodule", 0], label_names=LABELS)
    np.testing.assert_array_equal(picked, every[:, [5, 0]])
    with pytest.raises(TfcxrError, match="unknown label 'Fracture'"):
        grad_cam(student, images, "Fracture", label_names=LABELS)
    with pytest.raises(TfcxrError, match="out of range"):
        grad_cam(student, images, 14)
    with pytest.raises(TfcxrError, match="no layer 'nope'"):
        grad_cam(student, images, layer="nope")


def test_size_resizes_maps_to_the_image(student, images):
    maps = grad_cam(student, images, [0, 1], size=SIZE)
    assert maps.shape == (3, 2, SIZE, SIZE)
    assert 0.0 <= maps.min() and maps.max() <= 1.0


def test_nested_backbone_is_flattened(student, images):
    inputs = keras.Input((SIZE, SIZE, 3), name="image")
    x = keras.layers.Rescaling(1.0, name="identity")(inputs)
    nested = keras.Model(inputs, student(x), name="wrapped")  # not a registered name
    np.testing.assert_allclose(grad_cam(nested, images, [1, 9]),
                               grad_cam(student, images, [1, 9]), atol=1e-6)
    # Layers are copied, not re-called: the student's own graph gains no second caller.
    assert len(student.get_layer("final_expand")._inbound_nodes) == 1


def test_qat_model_is_explained_through_its_float_twin(student, qat_student, images):
    twin = float_twin(qat_student)
    assert [layer.name for layer in twin.layers[1:]] == [
        layer.name for layer in student.layers[1:]]
    np.testing.assert_allclose(twin(images).numpy(), student(images).numpy(), atol=1e-6)
    np.testing.assert_allclose(grad_cam(qat_student, images, [2, 3]),
                               grad_cam(student, images, [2, 3]), atol=1e-6)


def test_unregistered_model_uses_the_last_map_before_pooling():
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, name="conv")(inputs)
    x = keras.layers.ReLU(name="features")(x)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    x = keras.layers.Conv2D(8, 1, name="mix")(x)  # 4-D, but after the pooling: not the one
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, outputs, name="custom")
    assert gradcam_model(model)[1] == "features"
    maps = grad_cam(model, blob_images(2, 16))
    assert maps.shape == (2, 2, 7, 7) and np.isfinite(maps).all()
