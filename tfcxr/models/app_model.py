"""The app-facing model: the network with its preprocessing inside, taking pixels as a phone has them.

A phone holds an image as RGB bytes. The exported model therefore takes ``pixels``, an
[N, S, S, C] tensor of pixel values in [0, 255] (float32, or uint8 for int8 models), applies the
run's normalisation ``(x / 255 - mean) / std`` itself, and returns ``logits`` (the probability is
``sigmoid(logit)``, applied after dequantisation so an int8 model keeps its ranking of rare
findings). The app never re-implements a model's preprocessing, and training, evaluation and the
phone feed the network the same numbers.

The network is rebuilt on the new input as one flat functional graph (its layers are shared, not
copied): tfmot and tf-explain both refuse nested models.
"""

from __future__ import annotations

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.preprocessing import PreprocessingSpec

INPUT_NAME = "pixels"
OUTPUT_NAME = "logits"
PIXEL_RANGE = (0.0, 255.0)


@keras.utils.register_keras_serializable(package="tfcxr")
class PixelNormalization(keras.layers.Layer):
    """``(x / 255 - mean) / std`` per channel, written as one multiply-add for int8 kernels.

    With ``pin_input_range`` the pixels first pass a fake-quant node fixed to [0, 255]: the int8
    converter then gives the uint8 input scale 1 and zero point 0, so an app copies a bitmap's
    bytes into the input unchanged. Exact for integer pixels; only int8 exports set it, because the
    float converters would keep it as a quantize/dequantize pair.
    """

    def __init__(self, mean, std, pin_input_range: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.mean, self.std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        self.pin_input_range = bool(pin_input_range)

    def call(self, pixels):
        if self.pin_input_range:
            pixels = tf.quantization.fake_quant_with_min_max_args(
                pixels, min=PIXEL_RANGE[0], max=PIXEL_RANGE[1], num_bits=8)
        scale = tf.constant([1.0 / (PIXEL_RANGE[1] * s) for s in self.std], pixels.dtype)
        offset = tf.constant([-m / s for m, s in zip(self.mean, self.std)], pixels.dtype)
        return pixels * scale + offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mean": list(self.mean), "std": list(self.std),
                "pin_input_range": self.pin_input_range}


def build_app_model(network: keras.Model, spec: PreprocessingSpec,
                    pin_input_range: bool = False) -> keras.Model:
    """``pixels`` [N, S, S, C] in [0, 255] -> ``logits`` [N, L]: ``network`` with its preprocessing.

    ``network`` takes ``spec``-normalised images; it must be a flat functional model with one
    input and one output (every tfcxr model is). Its layers and weights are shared with the result.
    """
    if isinstance(network.input, (list, tuple)) or isinstance(network.output, (list, tuple)):
        raise TfcxrError(f"{network.name}: the app model needs one input and one output")
    if tuple(network.input_shape[1:]) != spec.input_shape:
        raise TfcxrError(f"{network.name} takes {network.input_shape[1:]}, the preprocessing "
                         f"says {spec.input_shape}")
    pixels = keras.Input(spec.input_shape, name=INPUT_NAME)
    normalized = PixelNormalization(spec.mean, spec.std, pin_input_range, name="normalize")(pixels)
    logits = call_flat(network, normalized)
    if network.layers[-1].name != OUTPUT_NAME:  # tfcxr models name their classifier "logits"
        logits = keras.layers.Activation("linear", name=OUTPUT_NAME)(logits)
    return keras.Model(pixels, logits, name=f"{network.name}_app")


def call_flat(network: keras.Model, inputs):
    """Apply ``network``'s layers to ``inputs`` one by one, so they join the caller's graph flat
    (``network(inputs)`` would nest it as one layer). Replays the functional config in order."""
    config = network.get_config()
    layers = {layer.name: layer for layer in network.layers}
    (input_name, _, _), = config["input_layers"]
    tensors = {(input_name, 0, 0): inputs}
    for entry in config["layers"]:
        layer = layers[entry["name"]]
        for node_index, node in enumerate(entry["inbound_nodes"]):
            args = [tensors[(name, index, tensor)] for name, index, tensor, _ in node]
            outputs = layer(args[0] if len(args) == 1 else args, **node[0][3])
            for i, tensor in enumerate(tf.nest.flatten(outputs)):
                tensors[(layer.name, node_index, i)] = tensor
    (output_name, index, tensor), = config["output_layers"]
    return tensors[(output_name, index, tensor)]


def is_app_model(model: keras.Model) -> bool:
    """True for a model that takes pixels (an app model, or a QAT copy of one)."""
    return any(isinstance(getattr(layer, "layer", layer), PixelNormalization)
               for layer in model.layers)


def pixel_spec(spec: PreprocessingSpec) -> PreprocessingSpec:
    """The pipeline spec whose "normalisation" yields pixels in [0, 255] (what app models take)."""
    return PreprocessingSpec(spec.image_size, spec.channels, (0.0,) * spec.channels,
                             (1.0 / PIXEL_RANGE[1],) * spec.channels, spec.resize_method)


def renormalized(network: keras.Model, network_spec: PreprocessingSpec,
                 input_spec: PreprocessingSpec) -> keras.Model:
    """``network`` (trained on ``network_spec``'s normalisation) fed images normalised with
    ``input_spec``: each image is mapped back to pixels and normalised the network's own way
    (``x * s_in / s_net + (m_in - m_net) / s_net``). ``network`` itself when the two agree.
    This is how a teacher sees a student's batches (ImageNet vs Caffe preprocessing, or pixels)."""
    if tuple(network.input_shape[1:]) != input_spec.input_shape:
        raise TfcxrError(f"{network.name} takes {tuple(network.input_shape[1:])}, the data is "
                         f"{input_spec.input_shape}")
    if (network_spec.mean, network_spec.std) == (input_spec.mean, input_spec.std):
        return network
    scale = [s_in / s for s_in, s in zip(input_spec.std, network_spec.std)]
    offset = [(m_in - m) / s for m_in, m, s in zip(input_spec.mean, network_spec.mean, network_spec.std)]
    inputs = keras.Input(input_spec.input_shape, name="images")
    own = keras.layers.Rescaling(scale, offset, name="own_normalization")(inputs)
    return keras.Model(inputs, network(own), name=f"{network.name}_renormalized")
