"""Grad-CAM heat maps of tfcxr models, per label, on tf-explain's ``GradCAM``.

Standard Grad-CAM (Selvaraju et al.): for label ``c`` and the feature map ``A`` of the Grad-CAM
layer, ``alpha_k = mean_ij d logit_c / d A_k(i, j)`` and the map is ``ReLU(sum_k alpha_k A_k)``,
here divided by its maximum so that it lies in [0, 1] (an all-zero map stays zero: no positive
evidence). The gradient is that of the label's logit, not of its probability: the sigmoid would
only rescale it, and saturate it for confident predictions. tf-explain's ``GradCAM`` weighs the
feature map (``generate_ponderated_output``); by default it uses "guided" gradients (only positive
gradients where the activation is positive), which ``guided=True`` reproduces exactly. Gradients
for all requested labels come from one forward pass, where tf-explain would run one per label.

Which layer: ``layer=`` if given, else the registry's ``gradcam_layer`` of the model (found by
``model_name=``, the model's name, or the name of a model nested in it, since tfcxr names its
models after their registry entry), else the last 4-D layer before the first global pooling
(tf-explain's rule would pick a 1x1 map after a keep-dims pooling, as in the MobileNetV3 head).

Models that tf-explain cannot take are replayed first (``tfcxr.explain.graph``): a backbone nested
as a sub-model is flattened, and a QAT model is explained through its float twin.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from tf_explain.core.grad_cam import GradCAM

from tfcxr.backend import keras, tf
from tfcxr.errors import TfcxrError
from tfcxr.explain.graph import build_model, is_graph_model, new_graph
from tfcxr.models import get_spec, list_models
from tfcxr.quantize import is_qat_model

_GLOBAL_POOLING = (keras.layers.GlobalAveragePooling2D, keras.layers.GlobalMaxPooling2D)


def grad_cam(model: keras.Model, images, label="all", *, layer: str | None = None,
             label_names: Sequence[str] | None = None, guided: bool = False,
             size: int | tuple[int, int] | None = None, model_name: str | None = None,
             batch_size: int = 16, return_logits: bool = False):
    """Grad-CAM maps of ``images`` [N, H, W, C] (the model's normalised input) for ``label``.

    label: an index, a name from ``label_names``, a list of either, or ``"all"``.
    Returns float32 [N, L, h, w] in [0, 1], one map per requested label in the order asked, at the
    Grad-CAM layer's resolution or resized (bilinear) to ``size``; with ``return_logits`` also
    the logits [N, num_labels] of the same forward pass. A QAT model is explained through its
    float twin (``tfcxr.explain.graph.float_twin``).
    """
    grad_model, _ = gradcam_model(model, layer=layer, model_name=model_name)
    labels = resolve_labels(label, int(grad_model.outputs[1].shape[-1]), label_names)
    images = np.asarray(images, np.float32)
    if images.ndim != 4:
        raise TfcxrError(f"images must be a batch [N, H, W, C]; got shape {images.shape}")
    maps, logits = [], []
    for start in range(0, len(images), batch_size):
        batch_maps, batch_logits = _batch_cams(grad_model, images[start:start + batch_size],
                                               labels, guided)
        maps.append(resize_maps(normalize_maps(batch_maps), size).numpy())
        logits.append(batch_logits.numpy())
    maps, logits = np.concatenate(maps), np.concatenate(logits)
    return (maps, logits) if return_logits else maps


def gradcam_model(model: keras.Model, layer: str | None = None, model_name: str | None = None,
                  **graph_kwargs) -> tuple[keras.Model, str]:
    """A flat float model ``inputs -> [feature map, logits]`` and the Grad-CAM layer's name.

    ``graph_kwargs`` go to ``tfcxr.explain.graph.new_graph`` (preprocessing, input name...).
    """
    graph_kwargs.setdefault("unwrap_qat", is_qat_model(model))
    own = None if any(graph_kwargs.values()) else _own_graph(model)
    inputs, logits, trace = own if own is not None else new_graph(model, **graph_kwargs)
    if isinstance(logits, list):
        raise TfcxrError(f"{model.name!r} has {len(logits)} outputs; Grad-CAM needs one "
                         "logits output")
    name = resolve_layer(model, trace, layer, model_name)
    feature_map = dict((l.name, out) for l, out in trace)[name]
    return build_model(inputs, [feature_map, logits], name=f"{model.name}_gradcam"), name


def resolve_layer(model: keras.Model, trace, layer: str | None, model_name: str | None) -> str:
    """The Grad-CAM layer's name: explicit, from the registry, or the last 4-D map before pooling.

    The registry entry is ``model_name``, else the one whose name the model's (or a nested
    model's) name is or starts with followed by ``_`` (``eeea_net_c2_app``). In a QAT model kept
    quantized, the layer is found under its wrapper's name (``quant_final_expand``).
    """
    outputs = {l.name: out for l, out in trace}
    if layer is not None:
        if layer not in outputs:
            raise TfcxrError(f"{model.name!r} has no layer {layer!r} (nested models included)")
        _check_feature_map(layer, outputs[layer])
        return layer
    registered = set(list_models())
    if model_name and model_name not in registered:
        raise TfcxrError(f"model_name {model_name!r} is not a registered model")
    for name in [model_name] if model_name else _registry_candidates(model, trace, registered):
        wanted = get_spec(name).gradcam_layer
        for found in (wanted, f"quant_{wanted}"):
            if found in outputs:
                _check_feature_map(found, outputs[found])
                return found
    last = None
    for l, out in trace:
        if isinstance(getattr(l, "layer", l), _GLOBAL_POOLING):  # QAT wrappers hold the layer
            break
        if not isinstance(out, (list, tuple)) and len(out.shape) == 4:
            last = l.name
    if last is None:
        raise TfcxrError(f"{model.name!r} has no 4-D feature map to explain; pass layer=")
    return last


def _registry_candidates(model, trace, registered) -> list[str]:
    names = [model.name] + [l.name for l, _ in trace if is_graph_model(l)]
    return [entry for name in names
            for entry in sorted(registered, key=len, reverse=True)
            if name == entry or name.startswith(entry + "_")]


def resolve_labels(label, num_labels: int, label_names: Sequence[str] | None) -> list[int]:
    """``"all"``, an index, a name or a list of these, to a list of label indices."""
    if isinstance(label, str) and label == "all":
        return list(range(num_labels))
    items = [label] if isinstance(label, (int, np.integer, str)) else list(label)
    if label_names is not None and len(label_names) != num_labels:
        raise TfcxrError(f"{len(label_names)} label names for a model with {num_labels} outputs")
    indices = []
    for item in items:
        if isinstance(item, str):
            if label_names is None or item not in label_names:
                known = ", ".join(label_names) if label_names is not None else "none given"
                raise TfcxrError(f"unknown label {item!r} (label names: {known})")
            indices.append(list(label_names).index(item))
        elif not 0 <= int(item) < num_labels:
            raise TfcxrError(f"label index {item} out of range for {num_labels} labels")
        else:
            indices.append(int(item))
    if not indices:
        raise TfcxrError("no label asked for")
    return indices


def normalize_maps(maps: tf.Tensor) -> tf.Tensor:
    """ReLU, then divide each map [..., h, w] by its maximum: values in [0, 1].

    An all-zero map is divided by 1 and stays zero. Written with a select rather than a small
    floor (``maximum(peak, 1e-12)``): an int8 TFLite model quantizes such a floor to zero, and
    its DIV kernel then refuses to run.
    """
    maps = tf.nn.relu(maps)
    peak = tf.reduce_max(maps, axis=[-2, -1], keepdims=True)
    return maps / tf.where(peak > 0.0, peak, tf.constant(1.0, maps.dtype))


def resize_maps(maps: tf.Tensor, size: int | tuple[int, int] | None) -> tf.Tensor:
    """[N, L, h, w] maps resized bilinearly to ``size`` (kept in [0, 1]); None keeps them."""
    if size is None:
        return maps
    size = (size, size) if isinstance(size, (int, np.integer)) else tuple(size)
    n, labels, h, w = maps.shape
    flat = tf.reshape(maps, [-1, h, w, 1])
    resized = tf.image.resize(flat, size, method="bilinear")
    return tf.clip_by_value(tf.reshape(resized, [-1, labels, *size]), 0.0, 1.0)


def _batch_cams(grad_model, images, labels, guided):
    """Raw (un-normalised) maps [n, L, h, w] and logits [n, num_labels] of one batch."""
    with tf.GradientTape(persistent=True) as tape:
        feature_map, logits = grad_model(tf.convert_to_tensor(images), training=False)
        targets = [logits[:, c] for c in labels]
    maps = []
    for target in targets:
        grads = tape.gradient(target, feature_map)
        if guided:  # tf-explain's get_gradients_and_filters
            grads = (tf.cast(feature_map > 0, "float32") * tf.cast(grads > 0, "float32") * grads)
        maps.append(tf.stack(GradCAM.generate_ponderated_output(feature_map, grads)))
    del tape
    return tf.stack(maps, axis=1), logits


def _own_graph(model):
    """``(inputs, output, trace)`` of a flat model's own graph, as tf-explain uses it; None when
    the model nests models or calls a layer twice (then it is replayed)."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        return None
    if any(is_graph_model(l) or len(l._inbound_nodes) != 1 for l in model.layers):  # noqa: SLF001
        return None
    return model.inputs[0], model.outputs[0], [(l, l.output) for l in model.layers]


def _check_feature_map(name, output):
    if isinstance(output, (list, tuple)) or len(output.shape) != 4:
        raise TfcxrError(f"layer {name!r} does not output a 4-D feature map [N, h, w, channels]")
