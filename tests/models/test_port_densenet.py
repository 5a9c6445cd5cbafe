"""torchvision DenseNet -> Keras: logits parity, key spellings, the port-weights command, errors."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from click.testing import CliRunner  # noqa: E402

from tfcxr import models  # noqa: E402
from tfcxr.backend import keras  # noqa: E402
from tfcxr.cli import main  # noqa: E402
from tfcxr.models.densenet import build_densenet  # noqa: E402
from tfcxr.models.porting import PortingError, port_state_dict  # noqa: E402
from tfcxr.models.porting.densenet import load_state_dict, normalise_key  # noqa: E402
from torch_reference_densenet import DenseNet, densenet161, randomize_  # noqa: E402

SMALL_CONFIG = dict(growth_rate=8, block_config=(2, 2, 2, 2), num_init_features=16, bn_size=4)
DENSENET121_CONFIG = dict(growth_rate=32, block_config=(6, 12, 24, 16), num_init_features=64)
SIZE = 64
TOLERANCE = 1e-4


def _images(size=SIZE, n=2, seed=0):
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def _torch_logits(model, x):
    with torch.no_grad():
        return model(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()


def _torch_features(model, x):
    """The final ReLU map (NHWC), which Keras calls ``relu``."""
    with torch.no_grad():
        features = torch.relu(model.features(torch.from_numpy(x.transpose(0, 3, 1, 2))))
    return features.numpy().transpose(0, 2, 3, 1)


def _state_dict(model):
    return {k: v.numpy() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def small_torch():
    return randomize_(DenseNet(**SMALL_CONFIG, num_classes=14))


@pytest.fixture(scope="module")
def densenet121_checkpoint(tmp_path_factory):
    """A torchvision-layout DenseNet121 with a 14-finding head, random weights, saved as .pth."""
    model = randomize_(DenseNet(**DENSENET121_CONFIG, num_classes=14), seed=1)
    path = tmp_path_factory.mktemp("ckpt") / "densenet121_cxr.pth"
    torch.save(model.state_dict(), path)
    return model, path


def _small_keras(num_classes=14):
    return build_densenet(**SMALL_CONFIG, num_classes=num_classes, input_shape=(SIZE, SIZE, 3),
                          name="densenet_small")


def test_ported_small_densenet_matches_torch_logits(small_torch):
    model = _small_keras()
    load_state_dict(model, _state_dict(small_torch), source="small")
    x = _images()
    expected = _torch_logits(small_torch, x)
    assert np.abs(model(x).numpy() - expected).max() < TOLERANCE


def test_pre_0_3_torchvision_and_chexnet_key_spellings_are_accepted(small_torch):
    assert (normalise_key("features.denseblock2.denselayer3.norm.1.running_var")
            == "features.denseblock2.denselayer3.norm1.running_var")
    assert normalise_key("densenet121.classifier.0.weight") == "classifier.weight"
    assert normalise_key("features.transition1.conv.weight") == "features.transition1.conv.weight"
    # The whole old-style checkpoint, wrapped the way CheXNet saved it, ports to the same logits.
    old_style = {}
    for key, value in _state_dict(small_torch).items():
        for new, old in (("norm1", "norm.1"), ("norm2", "norm.2"), ("conv1", "conv.1"),
                         ("conv2", "conv.2")):
            if "denselayer" in key:
                key = key.replace(f".{new}.", f".{old}.")
        key = key.replace("classifier.", "classifier.0.")
        old_style[f"densenet121.{key}"] = value
    model = _small_keras()
    load_state_dict(model, old_style, source="old")
    x = _images()
    assert np.abs(model(x).numpy() - _torch_logits(small_torch, x)).max() < TOLERANCE


def test_a_mismatched_state_dict_is_refused_and_nothing_is_loaded(small_torch):
    state_dict = _state_dict(small_torch)
    state_dict.pop("features.norm5.running_mean")
    state_dict["features.extra.weight"] = np.zeros(3, np.float32)
    model = _small_keras()
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(PortingError, match=r"missing keys \(1\): features.norm5.running_mean.*"
                                                r"unexpected keys \(1\): features.extra.weight"):
        load_state_dict(model, state_dict, source="broken.pth")
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_port_weights_command_writes_weights_that_reproduce_torch(densenet121_checkpoint, tmp_path):
    torch_model, checkpoint = densenet121_checkpoint
    out = tmp_path / "densenet121.weights.h5"
    result = CliRunner().invoke(main, ["port-weights", "--arch", "densenet121",
                                       "--checkpoint", str(checkpoint), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "14 logits" in result.output
    model = models.create("densenet121", num_classes=14, input_shape=(SIZE, SIZE, 3), weights=out)
    x = _images()
    assert np.abs(model(x).numpy() - _torch_logits(torch_model, x)).max() < TOLERANCE


def test_another_class_count_ports_the_backbone_and_warns(densenet121_checkpoint, tmp_path):
    torch_model, checkpoint = densenet121_checkpoint
    out = tmp_path / "densenet121_3.weights.h5"
    result = CliRunner().invoke(main, ["port-weights", "-a", "densenet121", "-c", str(checkpoint),
                                       "-O", str(out), "--num-classes", "3"])
    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "backbone only" in result.output
    model = models.create("densenet121", num_classes=3, input_shape=(SIZE, SIZE, 3), weights=out)
    x = _images()
    features = keras.Model(model.input, model.get_layer("relu").output)(x).numpy()
    assert np.abs(features - _torch_features(torch_model, x)).max() < TOLERANCE


def test_port_weights_command_refuses_a_checkpoint_of_another_densenet(tmp_path):
    checkpoint = tmp_path / "small.pth"
    torch.save(DenseNet(**SMALL_CONFIG, num_classes=14).state_dict(), checkpoint)
    out = tmp_path / "densenet121.weights.h5"
    result = CliRunner().invoke(main, ["port-weights", "-a", "densenet121", "-c", str(checkpoint),
                                       "-O", str(out)])
    assert result.exit_code != 0
    assert "does not fit 'densenet121'" in result.output and "missing keys" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()


def test_port_weights_command_refuses_a_checkpoint_that_is_no_densenet(tmp_path):
    checkpoint = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, checkpoint)
    result = CliRunner().invoke(main, ["port-weights", "-a", "densenet161", "-c", str(checkpoint),
                                       "-O", str(tmp_path / "x.weights.h5")])
    assert result.exit_code != 0
    assert "no classifier weights (classifier.weight)" in result.output


@pytest.mark.parametrize("args, message", [
    (["-a", "densenet161", "-c", "missing.pth", "-O", "x.weights.h5"], "does not exist"),
    (["-a", "no_such_net", "-c", "{ckpt}", "-O", "x.weights.h5"], "has no weight porter"),
    (["-a", "densenet161", "-c", "{ckpt}", "-O", "x.weights"], "must end in .h5"),
])
def test_port_weights_command_usage_errors(tmp_path, args, message):
    checkpoint = tmp_path / "any.pth"
    checkpoint.write_bytes(b"")
    args = [a.format(ckpt=checkpoint) for a in args]
    with CliRunner().isolated_filesystem(temp_dir=tmp_path):
        result = CliRunner().invoke(main, ["port-weights", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_port_weights_help_lists_the_densenets():
    result = CliRunner().invoke(main, ["port-weights", "--help"])
    assert result.exit_code == 0
    assert "densenet161" in result.output and "--num-classes" in result.output


@pytest.mark.slow
def test_full_size_densenet161_matches_torch_logits():
    torch_model = randomize_(densenet161(num_classes=1000), seed=2)
    model = port_state_dict("densenet161", _state_dict(torch_model), input_shape=(SIZE, SIZE, 3))
    x = _images(n=1)
    assert np.abs(model(x).numpy() - _torch_logits(torch_model, x)).max() < TOLERANCE
