"""Run a .tflite model as the phone does: one image at a time through the LiteRT interpreter.

``ai_edge_litert`` is the supported runtime; ``tf.lite.Interpreter`` (deprecated, same kernels)
is the fallback when it is not installed. ``TFLiteModel`` hides the input contract: it takes
pixels in [0, 255] and returns float logits, quantising and dequantising as the model's tensors
say, so a caller compares modes without knowing them.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from tfcxr.errors import TfcxrError

TFLITE_SUFFIX = ".tflite"
GRADCAM_OUTPUT = "gradcam"


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tfcxr.backend import tf

        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        Interpreter = tf.lite.Interpreter
    return Interpreter


class TFLiteModel:
    """A loaded .tflite model. ``model``: a path or the model's bytes."""

    def __init__(self, model: str | Path | bytes, num_threads: int | None = None):
        if isinstance(model, (str, Path)):
            path = Path(model)
            if not path.is_file():
                raise TfcxrError(f"{path}: TFLite model not found")
            model = path.read_bytes()
        self.content = bytes(model)
        try:
            self.interpreter = _interpreter_class()(model_content=self.content,
                                                    num_threads=num_threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise TfcxrError(f"not a usable TFLite model: {e}") from None
        self.inputs = self.interpreter.get_input_details()
        self.outputs = self.interpreter.get_output_details()
        signature = self.interpreter.get_signature_list().get("serving_default", {})
        self.output_names = self._output_names(signature.get("outputs", []))

    def _output_names(self, names: list[str]) -> list[str]:
        """Signature output names in tensor order (the signature lists them sorted by name)."""
        if len(names) != len(self.outputs):
            return [detail["name"] for detail in self.outputs]
        details = self.interpreter.get_signature_runner().get_output_details()
        index_of = {details[name]["index"]: name for name in names}
        return [index_of.get(detail["index"], detail["name"]) for detail in self.outputs]

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.inputs[0]["shape"][1:])

    @property
    def input_dtype(self) -> np.dtype:
        return np.dtype(self.inputs[0]["dtype"])

    def _quantize_input(self, pixels: np.ndarray) -> np.ndarray:
        detail = self.inputs[0]
        scale, zero = detail["quantization"]
        dtype = self.input_dtype
        if not np.issubdtype(dtype, np.integer):
            return pixels.astype(dtype)
        info = np.iinfo(dtype)
        return np.clip(np.round(pixels / scale + zero), info.min, info.max).astype(dtype)

    def _dequantize(self, value: np.ndarray, detail: dict) -> np.ndarray:
        scale, zero = detail["quantization"]
        value = value.astype(np.float32)
        return (value - zero) * scale if scale else value

    def run(self, pixels: np.ndarray) -> dict[str, np.ndarray]:
        """All outputs for [N, H, W, C] pixels in [0, 255], invoked one image at a time."""
        pixels = np.asarray(pixels, np.float32)
        if pixels.shape[1:] != self.input_shape:
            raise TfcxrError(f"the model takes images of {self.input_shape}, got {pixels.shape[1:]}")
        results = {name: [] for name in self.output_names}
        for image in pixels:
            self.interpreter.set_tensor(self.inputs[0]["index"], self._quantize_input(image[None]))
            self.interpreter.invoke()
            for name, detail in zip(self.output_names, self.outputs):
                value = self.interpreter.get_tensor(detail["index"])
                results[name].append(self._dequantize(value, detail)[0])
        return {name: np.stack(values) for name, values in results.items()}

    @property
    def logits_name(self) -> str:
        """The logits output: the one output that is not the Grad-CAM maps (by elimination: a
        QAT model's converted output may carry tfmot's ``quant_`` prefix in its name)."""
        names = [name for name in self.output_names if name != GRADCAM_OUTPUT]
        if len(names) != 1:
            raise TfcxrError(f"the TFLite model has outputs {self.output_names}: expected the "
                             f"logits and at most a {GRADCAM_OUTPUT!r} output")
        return names[0]

    @property
    def logits_detail(self) -> dict:
        return dict(zip(self.output_names, self.outputs))[self.logits_name]

    def delegation(self) -> dict:
        """How the default delegate (XNNPACK) took the graph: ``partitions`` (delegate nodes in
        the execution plan), ``nodes`` (the model's ops) and ``outside``, {op name: count} of
        the ops left to the interpreter's own kernels. Each partition boundary is a hand-off,
        so one partition and nothing outside is the fast case.

        The interpreter lists the model's nodes and then one DELEGATE node per partition; an op
        runs outside when a tensor consumed in the execution plan (a partition's input or a
        model output) is produced by it rather than by a partition, traced back from there."""
        ops = self.interpreter._get_ops_details()  # noqa: SLF001
        partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
        nodes = [op for op in ops if op["op_name"] != "DELEGATE"]
        producer = {int(t): op for op in nodes for t in op["outputs"]}
        from_partitions = {int(t) for op in partitions for t in op["outputs"]}
        pending = [int(t) for op in partitions for t in op["inputs"]]
        pending += [int(d["index"]) for d in self.outputs]
        outside, seen = {}, set()
        while pending:
            tensor = pending.pop()
            if tensor in seen or tensor in from_partitions or tensor not in producer:
                continue
            seen.add(tensor)
            op = producer[tensor]
            outside[op["index"]] = op["op_name"]
            pending += [int(t) for t in op["inputs"]]
        counts: dict[str, int] = {}
        for name in outside.values():
            counts[name] = counts.get(name, 0) + 1
        return {"partitions": len(partitions), "nodes": len(nodes),
                "outside": dict(sorted(counts.items()))}

    def dequantized_from(self, output: dict) -> dict | None:
        """The quantized tensor a float ``output`` detail is dequantized from inside the model
        (an int8 export's final DEQUANTIZE): its details, whose scale is one step of the output;
        None when the output is computed in float."""
        producer = next((op for op in self.interpreter._get_ops_details()  # noqa: SLF001
                         if output["index"] in op["outputs"]), None)
        if producer is None or producer["op_name"] != "DEQUANTIZE":
            return None
        source = int(producer["inputs"][0])
        return next(d for d in self.interpreter.get_tensor_details() if d["index"] == source)

    def logits(self, pixels: np.ndarray) -> np.ndarray:
        """[N, C] float logits for [N, H, W, C] pixels in [0, 255]."""
        return self.run(pixels)[self.logits_name]
