"""Where an int8 file's Grad-CAM maps lose their correlation with Keras Grad-CAM.

Exports a run's float student as int8 with the Grad-CAM output (post-training, calibrated on up
to 500 training films, one of ``convert.INT8_GRAPHS``), then compares, per label over the first
``--films`` test films, Keras Grad-CAM (``grad_cam`` on the float model) with:

1. the file's own ``gradcam`` output;
2. the float Grad-CAM head (``GradCamHead``, the same weights) applied to the file's feature map,
   read from the interpreter and dequantised: what computing the branch in float would give;
3. the float head applied to Keras's feature map rounded onto the file's int8 grid (its scale and
   zero point): what the last tensor's quantisation alone costs.

If (2) is no better than (1) while (3) is near 1, the maps are limited by the int8 network's
features themselves, not by the Grad-CAM branch or the feature map's range.

    PYTHONPATH=. python benchmarks/int8_gradcam_error.py RUN [--graph hard_swish] [--films 16]
"""
import argparse
import warnings

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tfcxr.backend import keras, tf
from tfcxr.explain.gradcam import grad_cam
from tfcxr.export.convert import INT8_GRAPHS, convert, to_app_model, with_named_outputs
from tfcxr.export.exporter import CALIBRATION_IMAGES, _sample_rows
from tfcxr.runs.predictor import KerasPredictor, iter_pixel_batches
from tfcxr.runs.trained import TrainedRun

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("run", help="A trained run directory (its float student is exported).")
parser.add_argument("--graph", default="hard_swish", choices=list(INT8_GRAPHS))
parser.add_argument("--films", type=int, default=16, help="First N test films (the exporter's 16).")
parser.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES)
args = parser.parse_args()

run = TrainedRun.open(args.run)
network = run.network()
train = run.split("train")
rows = _sample_rows(len(train), args.calibration_images, run.config.seed)  # the exporter's films
calibration = np.concatenate(list(iter_pixel_batches(train.select(rows), run.spec)))
test = run.split("test")
pixels = next(iter_pixel_batches(test.select(np.arange(min(args.films, len(test)))), run.spec,
                                 args.films))
keras_maps = grad_cam(network, KerasPredictor(network, run.spec, run.label_names).model_inputs(pixels),
                      "all", model_name=run.model_name)


def correlations(maps):
    values = [np.corrcoef(keras_maps[:, j].ravel(), maps[:, j].ravel())[0, 1]
              for j in range(keras_maps.shape[1]) if keras_maps[:, j].std() and maps[:, j].std()]
    return f"mean {np.mean(values):.4f}, min {np.min(values):.4f} over {len(values)} labels"


content = convert(network, run.spec, "int8", calibration, gradcam=True, model_name=run.model_name,
                  int8_graph_form=args.graph)
warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")  # wanted here
interpreter = Interpreter(model_content=content, experimental_preserve_all_tensors=True)
interpreter.allocate_tensors()
tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
# The Grad-CAM layer's map is the 4-D input of the global average pooling (a MEAN) at the
# smallest resolution; the squeeze-excite MEANs come earlier, at larger maps.
means = [op for op in interpreter._get_ops_details()  # noqa: SLF001
         if op["op_name"] == "MEAN" and len(tensors[op["inputs"][0]]["shape"]) == 4]
feature = max(means, key=lambda op: (-tensors[op["inputs"][0]]["shape"][1], op["index"]))["inputs"][0]
scale, zero = tensors[feature]["quantization"]
(image,) = interpreter.get_input_details()
(gradcam_output,) = [d for d in interpreter.get_output_details() if len(d["shape"]) == 4]
file_maps, file_features = [], []
for film in pixels:
    interpreter.set_tensor(image["index"], film[None].astype(np.uint8))
    interpreter.invoke()
    maps, (map_scale, map_zero) = interpreter.get_tensor(gradcam_output["index"]), gradcam_output["quantization"]
    file_maps.append((maps.astype(np.float32) - map_zero) * map_scale if map_scale else maps)
    file_features.append((interpreter.get_tensor(feature).astype(np.float32) - zero) * scale)
file_maps, file_features = np.concatenate(file_maps), np.concatenate(file_features)

app = with_named_outputs(to_app_model(network, run.spec, True, True, run.model_name,
                                      fold_depthwise=False))
head = app.get_layer("gradcam_head")
keras_features = keras.Model(app.inputs, head.input)(pixels.astype(np.float32)).numpy()
rounded = (np.clip(np.round(keras_features / scale) + zero, -128, 127) - zero) * scale
print(f"{run.model_name}, int8 graph {args.graph!r}, {len(pixels)} test films; Grad-CAM layer "
      f"map {[int(d) for d in tensors[feature]['shape']]}, int8 scale {scale:.4g}, zero point {zero}")
print(f"feature map vs Keras, mean |error| / mean |value|: int8 file "
      f"{np.abs(file_features - keras_features).mean() / np.abs(keras_features).mean():.4f}, "
      f"rounding alone {np.abs(rounded - keras_features).mean() / np.abs(keras_features).mean():.4f}")
print("correlation with Keras Grad-CAM:")
print(f"  1. the file's gradcam output:                    {correlations(file_maps)}")
print(f"  2. float head on the file's dequantised features: "
      f"{correlations(head(tf.constant(file_features))[1].numpy())}")
print(f"  3. float head on Keras features, int8-rounded:    "
      f"{correlations(head(tf.constant(rounded.astype(np.float32)))[1].numpy())}")
