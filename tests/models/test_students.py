"""Students of the zoo: exact sizes from paper.md §4, MACs, layer names, the custom layers' numerics."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from tfcxr import models
from tfcxr.cli import main
from tfcxr.backend import keras, tf
from tfcxr.models.layers import HardSigmoid, HardSwish, SqueezeExcite, make_divisible
from tfcxr.models.macs import count_macs

FULL = (224, 224, 3)


def _trainable_params(model) -> int:
    # PyTorch counts parameters only; BN running statistics are non-trainable weights in Keras.
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


@pytest.mark.parametrize("name, num_classes, expected", [
    ("eeea_net_c2", 14, 4_732_838),         # paper.md §4.4, the paper's 4.7 M
    ("eeea_net_c2", 1000, 5_995_904),       # darmo's ImageNet model
    ("eeea_net_c1", 14, 3_805_062),         # paper.md §4.6
    ("ofa_595", 14, 7_620_446),             # paper.md §4.6 (DTforCXR8 prints 7.620446 M)
    ("mobilenet_v3_large", 1000, 5_483_032),  # torchvision's count
    ("mobilenet_v3_small", 1000, 2_542_856),  # torchvision's count
])
def test_parameter_count_is_exact(name, num_classes, expected):
    model = models.create(name, num_classes=num_classes, input_shape=FULL)
    assert _trainable_params(model) == expected


def test_eeea_net_c2_at_224_matches_the_paper():
    spec = models.get_spec("eeea_net_c2")
    model = models.create("eeea_net_c2", num_classes=14)
    assert spec.role == "student" and spec.quantizable
    assert model.input_shape == (None, 224, 224, 3)
    macs = count_macs(model)
    assert 0.28e9 <= macs <= 0.32e9, macs  # "0.3 G FLOPs"; paper.md §4.4 computes 289.9 M
    assert round(macs / 1e5) == 2899
    assert model.get_layer(spec.gradcam_layer).output_shape == (None, 7, 7, 960)
    bn = model.get_layer("first_conv.bn")
    assert (bn.momentum, bn.epsilon) == (0.9, 1e-5)


def test_eeea_net_c2_layers_are_named_after_the_pytorch_modules():
    model = models.create("eeea_net_c2", num_classes=14, input_shape=(64, 64, 3))
    names = {layer.name for layer in model.layers}
    assert {"first_conv.pad", "first_conv.conv", "first_conv.bn", "blocks.0.depth_conv.conv",
            "blocks.1.inverted_bottleneck.conv", "blocks.1.depth_conv.pad",
            "blocks.4.depth_conv.se", "blocks.18.point_linear.bn", "final_expand_layer.conv",
            "final_expand_layer.bn", "final_expand", "feature_mix_layer.conv", "logits"} <= names
    assert "blocks.0.inverted_bottleneck.conv" not in names  # expand ratio 1: no 1x1 expansion
    assert "blocks.2.depth_conv.pad" not in names  # stride 1: Keras "same" is already symmetric
    assert "blocks.2.add" in names and "blocks.1.add" not in names  # residual iff s=1, in=out
    assert model.get_layer("logits").get_config()["activation"] == "linear"


def test_eeea_net_c2_squeeze_widths_follow_the_paper_table():
    model = models.create("eeea_net_c2", num_classes=14, input_shape=(64, 64, 3))
    widths = {int(layer.name.split(".")[1]): layer.squeezed_channels
              for layer in model.layers if isinstance(layer, SqueezeExcite)}
    assert widths == {4: 24, 5: 32, 6: 32, 11: 120, 12: 112, 13: 88, 14: 88,
                      15: 168, 16: 240, 17: 240, 18: 120}


@pytest.mark.parametrize("value, expected", [(24, 24), (30, 32), (84, 88), (3, 8), (11, 16)])
def test_make_divisible(value, expected):
    assert make_divisible(value, 8) == expected


def test_hard_activations_follow_the_mobilenet_v3_formulas():
    x = np.linspace(-8, 8, 161, dtype=np.float32)  # includes the kinks at -3 and 3
    relu6 = np.clip(x + 3, 0, 6)
    np.testing.assert_allclose(HardSigmoid()(x).numpy(), relu6 / 6, atol=1e-7)
    np.testing.assert_allclose(HardSwish()(x).numpy(), x * relu6 / 6, atol=1e-6)
    # tf-keras's own hard_sigmoid is clip(0.2x + 0.5): a different function.
    assert not np.allclose(HardSigmoid()(x).numpy(), keras.activations.hard_sigmoid(tf.constant(x)).numpy())


def test_squeeze_excite_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 5, 5, 96)).astype(np.float32)
    se = SqueezeExcite()
    se.build(x.shape)
    assert [w.name.split("/")[-1] for w in se.weights] == [
        "reduce_kernel:0", "expand_kernel:0", "reduce_bias:0", "expand_bias:0"]
    assert se.reduce_kernel.shape == (1, 1, 96, 24) and se.expand_kernel.shape == (1, 1, 24, 96)
    se.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.2 for w in se.weights])
    rk, ek, rb, eb = (w.numpy() for w in se.weights)
    pooled = x.mean(axis=(1, 2))
    hidden = np.maximum(pooled @ rk[0, 0] + rb, 0)
    gate = np.clip(hidden @ ek[0, 0] + eb + 3, 0, 6) / 6
    np.testing.assert_allclose(se(x).numpy(), x * gate[:, None, None, :], rtol=1e-5, atol=1e-6)


def test_custom_layers_round_trip_through_their_config():
    for layer in (HardSwish(name="a"), HardSigmoid(name="b"), SqueezeExcite(reduction=8, name="c")):
        restored = keras.layers.deserialize(keras.layers.serialize(layer))
        assert type(restored) is type(layer) and restored.get_config() == layer.get_config()


def test_count_macs_walks_nested_models():
    inner = keras.Sequential([keras.Input((8, 8, 4)), keras.layers.Conv2D(6, 3, padding="same")])
    inputs = keras.Input((8, 8, 4))
    outputs = keras.layers.Dense(5)(keras.layers.Flatten()(inner(inputs)))
    model = keras.Model(inputs, outputs)
    assert count_macs(model) == 8 * 8 * 6 * (3 * 3 * 4) + 8 * 8 * 6 * 5


def test_unknown_padding_is_rejected():
    with pytest.raises(ValueError, match="padding"):
        models.create("eeea_net_c2", input_shape=(32, 32, 3), padding="reflect")


def test_same_padding_variant_has_no_pad_layers_and_same_shapes():
    same = models.create("eeea_net_c2", num_classes=14, input_shape=(65, 65, 3), padding="same")
    torch_like = models.create("eeea_net_c2", num_classes=14, input_shape=(65, 65, 3))
    assert not any(isinstance(layer, keras.layers.ZeroPadding2D) for layer in same.layers)
    assert same.get_layer("final_expand").output_shape == torch_like.get_layer(
        "final_expand").output_shape == (None, 3, 3, 960)


def test_models_command_lists_students_with_size_and_cost():
    result = CliRunner().invoke(main, ["models", "--role", "student", "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)}
    assert set(rows) == set(models.list_models(role="student"))
    assert rows["eeea_net_c2"] | {"description": ""} == {
        "name": "eeea_net_c2", "role": "student", "params": 4_732_838, "macs": 289_941_952,
        "input_size": 224, "gradcam_layer": "final_expand", "quantizable": True, "description": ""}
