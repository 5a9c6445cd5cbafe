"""Porting darmo / OFA PyTorch checkpoints: Keras logits equal PyTorch's, and bad files fail clearly."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from torch_reference_ofa import MobileNetV3, randomized  # noqa: E402

from tfcxr.models import ofa_mobilenet  # noqa: E402
from tfcxr.models.porting import (  # noqa: E402
    PortingError, list_porters, load_torch_checkpoint, port_state_dict)

SIZE = 64


@pytest.fixture(scope="module")
def reference():
    """A randomly initialised PyTorch EEEA-Net-C2 (1000 classes, eval mode) and its state_dict."""
    torch.manual_seed(0)
    model = randomized(MobileNetV3(ofa_mobilenet.EEEA_NET_C2, num_classes=1000), image_size=SIZE)
    return model, {k: v.numpy() for k, v in model.state_dict().items()}


def _images(seed=0):
    return np.random.default_rng(seed).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)


def _torch_logits(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def test_reference_has_darmo_keys_and_size(reference):
    model, state_dict = reference
    assert sum(p.numel() for p in model.parameters()) == 5_995_904
    assert {"first_conv.conv.weight", "first_conv.bn.running_var",
            "blocks.1.mobile_inverted_conv.inverted_bottleneck.conv.weight",
            "blocks.4.mobile_inverted_conv.depth_conv.se.fc.reduce.bias",
            "final_expand_layer.bn.weight", "feature_mix_layer.conv.weight",
            "classifier.linear.weight"} <= set(state_dict)


def test_ported_eeea_net_c2_matches_pytorch_logits(reference):
    model, state_dict = reference
    x = _images()
    keras_model = port_state_dict("eeea_net_c2", state_dict, input_shape=(SIZE, SIZE, 3))
    expected = _torch_logits(model, x)
    assert keras_model.output_shape == (None, 1000)
    np.testing.assert_allclose(keras_model(x, training=False).numpy(), expected, atol=1e-4, rtol=0)
    assert np.abs(expected[0] - expected[1]).max() > 0.1  # the logits depend on the image


def test_keras_same_padding_would_not_match(reference):
    # Why padding="pytorch" is the default: "same" pads stride-2 convolutions asymmetrically.
    model, state_dict = reference
    x = _images()
    shifted = port_state_dict("eeea_net_c2", state_dict, input_shape=(SIZE, SIZE, 3), padding="same")
    assert np.abs(shifted(x, training=False).numpy() - _torch_logits(model, x)).max() > 0.1


def test_new_head_keeps_the_ported_backbone(reference):
    _, state_dict = reference
    with pytest.warns(UserWarning, match="head has 1000 classes, not 14"):
        ported = port_state_dict("eeea_net_c2", state_dict, num_classes=14,
                                 input_shape=(SIZE, SIZE, 3))
    assert ported.output_shape == (None, 14)
    np.testing.assert_array_equal(ported.get_layer("final_expand_layer.bn").get_weights()[2],
                                  state_dict["final_expand_layer.bn.running_mean"])


def test_current_ofa_and_darmo_head_spellings_are_accepted(reference):
    model, state_dict = reference
    renamed = {k.replace(".mobile_inverted_conv.", ".conv.").replace("classifier.linear.", "classifier."): v
               for k, v in state_dict.items()}
    x = _images(1)
    ported = port_state_dict("eeea_net_c2", renamed, input_shape=(SIZE, SIZE, 3))
    np.testing.assert_allclose(ported(x, training=False).numpy(), _torch_logits(model, x),
                               atol=1e-4, rtol=0)


def test_checkpoint_file_with_wrapper_and_module_prefix(reference, tmp_path):
    model, _ = reference
    path = tmp_path / "eeea-c2.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()},
                "epoch": 3}, path)
    state_dict = load_torch_checkpoint(path)
    assert "first_conv.conv.weight" in state_dict and state_dict["first_conv.conv.weight"].shape == (16, 3, 3, 3)
    assert "eeea_net_c2" in list_porters()


def test_mismatched_checkpoint_names_file_and_keys(reference):
    _, state_dict = reference
    broken = dict(state_dict)
    del broken["blocks.3.mobile_inverted_conv.depth_conv.bn.running_var"]
    broken["blocks.3.extra.weight"] = np.zeros(3, np.float32)
    broken["first_conv.conv.weight"] = np.zeros((16, 3, 5, 5), np.float32)
    with pytest.raises(PortingError) as error:
        port_state_dict("eeea_net_c2", broken, source="eeea-c2.pt", input_shape=(SIZE, SIZE, 3))
    message = str(error.value)
    assert message.startswith("eeea-c2.pt: does not fit 'eeea_net_c2'")
    assert "missing keys (1): blocks.3.depth_conv.bn.running_var" in message
    assert "unexpected keys (1): blocks.3.extra.weight" in message
    assert "first_conv.conv.weight (16, 3, 5, 5)" in message


def test_wrong_architecture_is_refused(reference):
    _, state_dict = reference
    with pytest.raises(PortingError, match="does not fit 'eeea_net_c1'"):
        port_state_dict("eeea_net_c1", state_dict, source="eeea-c2.pt", input_shape=(SIZE, SIZE, 3))


def test_unknown_arch_and_missing_file(tmp_path):
    with pytest.raises(PortingError, match="no weight porter for model 'nope'"):
        port_state_dict("nope", {})
    with pytest.raises(PortingError, match="checkpoint not found"):
        load_torch_checkpoint(tmp_path / "absent.pt")
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    with pytest.raises(PortingError, match="notes.pt: not a readable PyTorch state_dict"):
        load_torch_checkpoint(not_a_checkpoint)
