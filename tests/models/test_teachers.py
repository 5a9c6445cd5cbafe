"""Teachers of the zoo: exact sizes, output shapes, Grad-CAM layers, local ImageNet weights."""

import numpy as np
import pytest

from tfcxr.backend import tf, keras
from tfcxr import models
from tfcxr.errors import TfcxrError

SMALL = (32, 32, 3)


def _trainable_params(model) -> int:
    # torchvision's (and timm's) published counts are sum(p.numel() for p in model.parameters()):
    # parameters only. BN running mean/var are buffers there and non-trainable weights here, so the
    # Keras side to compare is the trainable weights, not count_params().
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def _randomize(model, seed=0):
    """Random values in every weight, BN moving statistics included (variances kept positive)."""
    rng = np.random.default_rng(seed)
    model.set_weights([
        rng.uniform(0.5, 1.5, w.shape) if "moving_variance" in w.name or "gamma" in w.name
        else rng.normal(0.0, 0.1, w.shape)
        for w in model.weights])


def _feature_model(model, layer_name):
    return keras.Model(model.input, model.get_layer(layer_name).output)


@pytest.mark.parametrize("name, torchvision_params", [
    ("densenet161", 28_681_000), ("densenet121", 7_978_856),
    ("densenet169", 14_149_480), ("densenet201", 20_013_928)])
def test_densenet_parameter_count_matches_torchvision(name, torchvision_params):
    # The parameter count does not depend on the input size, so a 32-px build suffices.
    model = models.create(name, num_classes=1000, input_shape=SMALL)
    assert _trainable_params(model) == torchvision_params


@pytest.mark.parametrize("name, timm_params", [("vit_small", 22_050_664), ("vit_tiny", 5_717_416)])
def test_vit_parameter_count_matches_timm(name, timm_params):
    # The position embedding has one row per patch, so this count holds at 224 px only.
    model = models.create(name, num_classes=1000, input_shape=(224, 224, 3))
    assert _trainable_params(model) == timm_params


@pytest.mark.parametrize("name, size, gradcam_shape", [
    ("densenet161", 64, (2, 2, 2208)), ("densenet121", 64, (2, 2, 1024)),
    ("resnet50", 64, (2, 2, 2048)), ("vit_tiny", 32, (2, 2, 192))])
def test_teacher_outputs_logits_and_declares_a_4d_gradcam_layer(name, size, gradcam_shape):
    spec = models.get_spec(name)
    assert spec.role == "teacher"
    model = models.create(name, num_classes=14, input_shape=(size, size, 3))
    assert model.output_names == ["logits"]
    x = np.random.default_rng(0).random((2, size, size, 3), dtype=np.float32)
    features, logits = keras.Model(
        model.input, [model.get_layer(spec.gradcam_layer).output, model.output])(x)
    assert logits.shape == (2, 14) and np.isfinite(logits).all()
    assert tuple(features.shape[1:]) == gradcam_shape


def test_vit_gradcam_map_feeds_the_logits():
    # With a class-token head the last patch tokens would get zero gradient and a blank Grad-CAM.
    model = models.create("vit_tiny", num_classes=3, input_shape=SMALL)
    grad_model = keras.Model(model.input, [model.get_layer("patch_map").output, model.output])
    x = tf.random.uniform((1, *SMALL), seed=0)
    with tf.GradientTape() as tape:
        feature_map, logits = grad_model(x)
        score = logits[:, 1]
    grads = tape.gradient(score, feature_map)
    assert float(tf.reduce_max(tf.abs(grads))) > 0


@pytest.mark.parametrize("name, bad_shape", [
    ("densenet161", (16, 16, 3)), ("resnet50", (24, 24, 3)), ("vit_tiny", (40, 40, 3))])
def test_unsupported_input_sizes_are_refused(name, bad_shape):
    with pytest.raises(ValueError, match="input"):
        models.create(name, input_shape=bad_shape)


def test_densenet121_loads_a_local_keras_applications_notop_file(tmp_path):
    # A keras.applications notop file with random weights stands in for the ImageNet download.
    reference = keras.applications.DenseNet121(include_top=False, weights=None, input_shape=SMALL)
    _randomize(reference)
    path = tmp_path / "densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5"
    reference.save_weights(str(path))

    model = models.create("densenet121", num_classes=14, input_shape=SMALL, weights_imagenet=path)
    x = np.random.default_rng(1).random((2, *SMALL), dtype=np.float32)
    expected = reference(x).numpy()
    got = _feature_model(model, "relu")(x).numpy()
    # Same graph and layer names. BN epsilon differs (torchvision's 1e-5, Keras' 1.001e-5), but a
    # 1e-8 shift of var + eps is below float32 resolution here: the outputs came out identical.
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_resnet50_loads_a_local_keras_applications_notop_file(tmp_path):
    reference = keras.applications.ResNet50(include_top=False, weights=None, input_shape=SMALL)
    _randomize(reference)
    path = tmp_path / "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    reference.save_weights(str(path))

    model = models.create("resnet50", num_classes=14, input_shape=SMALL, weights_imagenet=path)
    x = np.random.default_rng(1).random((2, *SMALL), dtype=np.float32)
    np.testing.assert_allclose(_feature_model(model, "conv5_block3_out")(x).numpy(),
                               reference(x).numpy(), rtol=1e-5, atol=1e-5)


def test_imagenet_weights_of_another_architecture_are_refused(tmp_path):
    # Keras' by-name loading would silently skip every layer of a foreign file.
    other = keras.Sequential([keras.Input(SMALL), keras.layers.Conv2D(4, 3, name="conv1/conv")])
    path = tmp_path / "other_notop.h5"
    other.save_weights(str(path))
    with pytest.raises(TfcxrError, match="does not hold densenet121 weights"):
        models.create("densenet121", input_shape=SMALL, weights_imagenet=path)


def test_missing_imagenet_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(TfcxrError, match="not found"):
        models.create("densenet121", input_shape=SMALL, weights_imagenet=tmp_path / "nope.h5")


def test_vit_small_macs_count_attention():
    """timm reports 4.6 GMACs for ViT-S/16 at 224; without attention the count would be ~2.85."""
    from tfcxr.models.macs import count_macs

    macs = count_macs(models.create("vit_small", num_classes=1000))
    assert 4.55e9 < macs < 4.65e9, macs
