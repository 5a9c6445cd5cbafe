"""``export_tflite``: a trained run to a .tflite an Android app can drop in, checked before written.

One export, in order, all in memory until the end:
1. the source: the QAT model of ``tfcxr qat`` for int8 when the run has one, else the trained
   float student (int8 is then post-training, calibrated on training images);
2. conversion to the mode (``convert``);
3. per-label operating thresholds chosen on the validation split with the *exported* model's
   scores (Youden's J), since those are the scores the app thresholds;
4. the parity gate on the parity split (test by default): the .tflite against its source;
5. latency on this machine;
6. TFLite metadata (labels, sigmoid score calibration, thresholds) packed into the model.
Only then are the files written, each atomically: a failed export, or one that fails the gate
without ``force``, leaves whatever was there before untouched.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.version import __version__
from tfcxr.backend import tf
from tfcxr.errors import TfcxrError
from tfcxr.evaluation.operating_points import youden_thresholds
from tfcxr.explain.gradcam import grad_cam
from tfcxr.export.convert import INT8_GRAPHS, convert
from tfcxr.export.latency import adb_benchmark_command, measure_latency
from tfcxr.export.metadata import ModelInfo, TensorInfo, add_metadata, sigmoid_calibration_file
from tfcxr.export.modes import get_mode
from tfcxr.export.parity import ParityReport, check_parity, finite_or_none
from tfcxr.io import write_bytes_atomic, write_text_atomic
from tfcxr.models.app_model import INPUT_NAME, OUTPUT_NAME
from tfcxr.models.macs import count_macs
from tfcxr.runs.loading import load_model
from tfcxr.runs.predictor import KerasPredictor, TFLitePredictor, iter_pixel_batches, score_together
from tfcxr.runs.tflite import GRADCAM_OUTPUT, TFLiteModel
from tfcxr.runs.trained import TrainedRun


class ParityGateError(TfcxrError):
    def __init__(self, report: ParityReport):
        self.report = report
        super().__init__(f"the {report.mode} model failed the parity gate; nothing was written "
                         f"(--force writes it anyway)\n{report.summary()}")


@dataclass
class ExportResult:
    tflite: Path
    files: dict[str, Path]
    parity: ParityReport
    card: dict


def output_paths(run: TrainedRun, mode: str, out: str | Path | None) -> tuple[Path, Path]:
    """(model file, folder of its side files). ``out``: a folder, or a ``.tflite`` path."""
    out = Path(out) if out else run.path / "export" / mode
    if out.suffix == ".tflite":
        return out, out.parent
    return out / f"{run.model_name}_{mode}.tflite", out


# Post-training int8 calibrates its activation ranges on this many training films (all of them in
# a smaller split). Measured on the demo's main-job student (104 test films, largest per-label AUC
# move against the Keras model): 100 films 0.0087, 200 0.0103 (over the gate's 0.01), 300
# 0.0035, all 384 0.0022. The films are held as uint8: 500 at 224 px are 75 MB.
CALIBRATION_IMAGES = 500


def _sample_rows(n_rows: int, count: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_rows, size=min(count, n_rows), replace=False))


def _thresholds(model: TFLiteModel, run: TrainedRun, split: str) -> dict:
    part = run.split(split)
    probs = TFLitePredictor(model, run.spec, run.label_names).probabilities(part)
    chosen = youden_thresholds(part.targets, probs, part.mask, run.label_names)
    return {"method": "youden_j", "split": split, "images": len(part),
            "scale": "probability = sigmoid(logit)",
            "labels": {name: {**values, "logit": float(np.log(values["threshold"] /
                                                              (1 - values["threshold"])))
                              if 0 < values["threshold"] < 1 else None}
                       for name, values in chosen.items()}}


def _tensor_contract(detail: dict) -> dict:
    scale, zero = detail["quantization"]
    return {"shape": [int(d) for d in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
            "quantization": {"scale": float(scale), "zero_point": int(zero)} if scale else None}


def _gradcam_info(model: TFLiteModel) -> TensorInfo:
    shape = dict(zip(model.output_names, model.outputs))[GRADCAM_OUTPUT]["shape"]
    return TensorInfo(
        "gradcam", f"Grad-CAM map of every finding [1, L, h, w] = {list(shape)}, values 0-1 "
        "(dequantized), at the last feature map's resolution: upsample to the film to overlay.")


def _gradcam_parity(source: KerasPredictor, model: TFLiteModel, pixels: np.ndarray,
                    model_name: str):
    """Correlation of the file's maps with Keras Grad-CAM (``grad_cam``) on the same films."""
    inputs = source.model_inputs(pixels)
    keras_maps = grad_cam(source.model, inputs, "all", model_name=model_name)
    tflite_maps = model.run(pixels)[GRADCAM_OUTPUT]
    per_label, flat = [], []
    for j in range(keras_maps.shape[1]):
        a, b = keras_maps[:, j].ravel(), tflite_maps[:, j].ravel()
        if a.std() and b.std():
            per_label.append(float(np.corrcoef(a, b)[0, 1]))
        else:
            flat.append(j)
    undefined = (f"{len(flat)} of {keras_maps.shape[1]} labels have constant maps (all zero: "
                 "no positive evidence at the Grad-CAM layer) in Keras or in the file, so no "
                 "correlation is defined for them" if flat else None)
    return {"films": len(pixels), "labels_compared": len(per_label),
            "correlation_mean": float(np.mean(per_label)) if per_label else None,
            "correlation_min": float(np.min(per_label)) if per_label else None,
            "undefined": undefined,
            "max_abs_diff": float(np.abs(keras_maps - tflite_maps).max())}


def _metadata(run: TrainedRun, mode: str, model: TFLiteModel) -> ModelInfo:
    spec, labels = run.spec, run.label_names
    dtype = model.input_dtype.name
    pixels = TensorInfo(
        INPUT_NAME,
        f"Chest film as RGB pixels (grayscale replicated), {spec.image_size}x{spec.image_size}, "
        f"values 0-255 as {dtype}; the model normalises them itself.",
        image_size=(spec.image_size, spec.image_size),
        color_space="RGB" if spec.channels == 3 else "GRAYSCALE",
        normalization=((0.0,), (1.0,)), value_range=(0.0, 255.0))
    logits = TensorInfo(
        OUTPUT_NAME,
        f"One logit per finding ({len(labels)}, order of labels.txt), float32; probability = "
        "sigmoid(logit). Operating thresholds in thresholds.json.",
        label_file="labels.txt", score_calibration_file="score_calibration.txt",
        extra_files=(("thresholds.json", "Per-label probability thresholds (Youden's J on "
                                         "validation data)."),))
    return ModelInfo(
        name=f"tfcxr {run.model_name} ({mode})", version=f"tfcxr {__version__}",
        description=(f"Multi-label chest X-ray classifier ({', '.join(labels)}), "
                     f"{run.model_name} trained on {run.config.data.dataset}; {get_mode(mode).description}. "
                     "Research use only, not a medical device."),
        author="tfcxr", license="Apache-2.0 (code); weights subject to the training data's terms",
        inputs=(pixels,), outputs=tuple(_gradcam_info(model) if name == GRADCAM_OUTPUT else logits
                                        for name in model.output_names))


def _output_contract(model: TFLiteModel, labels: list[str]) -> dict:
    """The logits output as an app reads it; for int8, also the int8 tensor it is dequantized
    from inside the model (its scale is one step of the logits)."""
    detail = model.logits_detail
    source = model.dequantized_from(detail)
    return {"name": OUTPUT_NAME, **_tensor_contract(detail),
            "computed_as": _tensor_contract(source) if source else None,
            "probability": "sigmoid(logit); the metadata's score calibration makes the Task "
                           "Library and MediaPipe Tasks return it",
            "labels": labels}


def _card(run: TrainedRun, mode: str, source: str, network, model: TFLiteModel,
          content: bytes, parity: ParityReport, thresholds: dict, latency, file_name: str) -> dict:
    counts = {split: int((run.manifest.splits == split).sum())
              for split in sorted(set(run.manifest.splits))}
    return finite_or_none({
        "model": {"architecture": run.model_name, "mode": mode,
                  "description": get_mode(mode).description, "file": file_name,
                  "size_bytes": len(content), "sha256": hashlib.sha256(content).hexdigest(),
                  "parameters": int(network.count_params()), "macs": int(count_macs(network)),
                  "source": source},
        "input": {"name": INPUT_NAME, **_tensor_contract(model.inputs[0]),
                  "range": [0, 255], "color": "RGB; a grayscale film has R = G = B",
                  "resize": f"{run.spec.resize_method} (antialiased) to "
                            f"{run.spec.image_size}x{run.spec.image_size}",
                  "inside_the_model": "(pixels / 255 - mean) / std",
                  "mean": list(run.spec.mean), "std": list(run.spec.std)},
        "output": _output_contract(model, run.label_names),
        "training": {"run": str(run.path.resolve()), "dataset": run.config.data.dataset,
                     "root": run.config.data.root, "images_per_split": counts,
                     "distillation": run.info.get("mode"), "teacher": run.info.get("teacher"),
                     "best_val_auc": run.info.get("best_val_auc"), "seed": run.config.seed},
        "thresholds": {k: v for k, v in thresholds.items() if k != "labels"},
        "parity": parity.to_dict(),
        "latency": {**latency.to_dict(), "machine": f"{platform.machine()} {platform.processor()}".strip(),
                    "runtime": type(model.interpreter).__module__,
                    "on_a_phone": adb_benchmark_command(file_name)},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "versions": {"tfcxr": __version__, "tensorflow": tf.__version__},
    })


def export_tflite(run_dir: str | Path, mode: str, out: str | Path | None = None, *,
                  force: bool = False, calibration_images: int = CALIBRATION_IMAGES,
                  parity_split: str = "test",
                  threshold_split: str = "val", latency_runs: int = 30,
                  use_qat: bool = True, gradcam: bool = False,
                  gradcam_films: int = 16) -> ExportResult:
    """Export ``run_dir``'s student as a ``mode`` .tflite with labels, thresholds and card.
    ``use_qat=False`` makes int8 post-training even when the run has a QAT model; ``gradcam``
    adds a second output, every label's Grad-CAM map, checked against Keras Grad-CAM."""
    export_mode = get_mode(mode)
    run = TrainedRun.open(run_dir)
    tflite_path, folder = output_paths(run, mode, out)
    network = run.network()
    qat_path = run.qat_model_path() if export_mode.integer_io and use_qat else None
    source_model = load_model(qat_path) if qat_path else network
    source = (f"QAT fine-tuned model {qat_path}" if qat_path else
              f"{'post-training int8 of ' if export_mode.integer_io else ''}float model {run.model_path}")
    calibration = None
    if export_mode.integer_io:
        train = run.split("train")
        rows = _sample_rows(len(train), calibration_images, run.config.seed)
        calibration = np.concatenate(list(iter_pixel_batches(train.select(rows), run.spec)))
    part = run.split(parity_split)
    source_predictor = KerasPredictor(source_model, run.spec, run.label_names)
    tried = []
    for form in (INT8_GRAPHS if export_mode.integer_io else ("whole",)):
        content = convert(source_model, run.spec, mode, calibration, gradcam=gradcam,
                          model_name=run.model_name, int8_graph_form=form)
        model = TFLiteModel(content)
        thresholds = _thresholds(model, run, threshold_split)
        keras_logits, tflite_logits = score_together(
            [source_predictor, TFLitePredictor(model, run.spec, run.label_names)], part)
        parity = check_parity(keras_logits, tflite_logits, part.targets, part.mask, run.label_names,
                              mode, {k: v["threshold"] for k, v in thresholds["labels"].items()})
        tried.append({"graph": form, "meaning": INT8_GRAPHS[form].meaning, "passed": parity.passed,
                      "failures": parity.failures, "mean_abs_prob_diff": parity.mean_abs_prob_diff,
                      **model.delegation()})
        if parity.passed:
            break
    if not parity.passed and not force:
        raise ParityGateError(parity)
    latency = measure_latency(model, runs=latency_runs)
    gradcam_check = None
    if gradcam:
        films = part.select(np.arange(min(gradcam_films, len(part))))
        gradcam_check = _gradcam_parity(source_predictor, model,
                                        next(iter_pixel_batches(films, run.spec, len(films))),
                                        run.model_name)
    files = {
        "labels.txt": ("\n".join(run.label_names) + "\n").encode(),
        "score_calibration.txt": sigmoid_calibration_file(len(run.label_names)),
        "thresholds.json": (json.dumps(finite_or_none(thresholds), indent=2) + "\n").encode(),
    }
    content = add_metadata(content, _metadata(run, mode, model), files)
    card = _card(run, mode, source, network, model, content, parity, thresholds, latency,
                 tflite_path.name)
    if export_mode.integer_io:
        card["int8_graph"] = finite_or_none({"written": tried[-1]["graph"], "tried": tried})
    if gradcam_check:
        card["gradcam"] = finite_or_none({
            **_tensor_contract(dict(zip(model.output_names, model.outputs))[GRADCAM_OUTPUT]),
            "meaning": "per label, ReLU(sum_k alpha_k A_k) / max at the Grad-CAM layer, in [0, 1]",
            "vs_keras_grad_cam": gradcam_check})
    written = {}
    for name in ("labels.txt", "thresholds.json"):
        write_bytes_atomic(folder / name, files[name])
        written[name] = folder / name
    write_text_atomic(folder / "parity.json", parity.to_json())
    write_text_atomic(folder / "model_card.json", json.dumps(card, indent=2) + "\n")
    written.update({"parity.json": folder / "parity.json", "model_card.json": folder / "model_card.json"})
    write_bytes_atomic(tflite_path, content)
    return ExportResult(tflite_path, written, parity, card)
