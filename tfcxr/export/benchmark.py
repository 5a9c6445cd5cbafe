"""``tfcxr benchmark``: size and per-image latency of a student in every export mode, next to its
teacher, timed in one process.

Latency on a shared CPU drifts from minute to minute, so the models are timed interleaved: each
round gives every model the same number of invocations, and the medians come from all rounds.
Ratios between models of one run are then trustworthy even when absolute numbers are not.
Weights do not change latency, so a teacher known only by name is built with random weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfcxr.backend import keras
from tfcxr.errors import TfcxrError
from tfcxr.export.convert import INT8_GRAPHS, convert
from tfcxr.export.harness import infer_mode
from tfcxr.export.latency import Latency, summarize, time_invocations
from tfcxr.export.modes import MODES
from tfcxr.models import create, get_spec
from tfcxr.models.app_model import INPUT_NAME, OUTPUT_NAME, PixelNormalization
from tfcxr.models.macs import count_macs
from tfcxr.preprocessing import PreprocessingSpec
from tfcxr.runs.layout import KERAS_SUFFIX, QAT_SUFFIX, model_preprocessing
from tfcxr.runs.loading import load_model
from tfcxr.runs.predictor import iter_pixel_batches
from tfcxr.runs.tflite import TFLITE_SUFFIX, TFLiteModel
from tfcxr.runs.trained import TrainedRun


FIRST_INT8_GRAPH = next(iter(INT8_GRAPHS))


@dataclass
class Candidate:
    name: str
    role: str
    mode: str
    content: bytes
    parameters: int | None
    macs: int | None
    int8_graph: str | None = None  # integer modes: the convert.INT8_GRAPHS form


@dataclass
class BenchmarkRow:
    name: str
    role: str
    mode: str
    parameters: int | None
    macs: int | None
    size_bytes: int
    latency: Latency
    delegation: dict  # TFLiteModel.delegation(): XNNPACK partitions and the ops left outside
    int8_graph: str | None = None

    @property
    def label(self) -> str:
        """The mode, with the int8 graph when it is not the one the exporter tries first."""
        return self.mode if self.int8_graph in (None, FIRST_INT8_GRAPH) else f"{self.mode} {self.int8_graph}"

    def to_dict(self) -> dict:
        return {"name": self.name, "role": self.role, "mode": self.mode,
                "int8_graph": self.int8_graph, "parameters": self.parameters, "macs": self.macs,
                "size_bytes": self.size_bytes, **self.latency.to_dict(), **self.delegation}


def _network_candidates(name, role, network, spec, modes, calibration, qat=None):
    params, macs = int(network.count_params()), int(count_macs(network))
    for mode in modes:
        if not MODES[mode].integer_io:
            yield Candidate(name, role, mode, convert(network, spec, mode), params, macs)
            continue
        source = network if qat is None else qat
        for form in INT8_GRAPHS:  # each graph the exporter may write, the one it tries first first
            content = convert(source, spec, mode, calibration, int8_graph_form=form)
            yield Candidate(name, role, mode, content, params, macs, form)


def _run_teacher(run: TrainedRun) -> str:
    """The run's trained teacher file, or its architecture's name (offline runs keep only a CSV
    of the teacher's predictions; student-only runs name the config's teacher)."""
    teacher = run.teacher
    if run.mode == "online" and teacher is not None and teacher.suffix == KERAS_SUFFIX \
            and teacher.is_file():
        return str(teacher)
    return run.config.teacher.name


def _teacher(teacher: str | None, spec: PreprocessingSpec, num_classes: int):
    """A teacher model from a saved file or, by registry name, with random weights."""
    if teacher is None:
        return None
    if Path(teacher).exists():
        return load_model(teacher)
    return create(get_spec(teacher).name, num_classes=num_classes, input_shape=spec.input_shape)


def _stock_candidates(spec: PreprocessingSpec, num_classes: int, modes, calibration):
    """keras.applications' MobileNetV3-Large, random weights (``weights=None``), logits out, as
    an app model with our pixel normalisation: a reference built outside tfcxr. (Nested, not
    flattened: its graph of TF op layers does not replay through ``call_flat``, and only QAT
    needs it flat.)"""
    network = keras.applications.MobileNetV3Large(
        input_shape=spec.input_shape, weights=None, classes=num_classes,
        classifier_activation=None, include_preprocessing=False)
    params, macs = int(network.count_params()), int(count_macs(network))
    for mode in modes:
        integer = MODES[mode].integer_io
        pixels = keras.Input(spec.input_shape, name=INPUT_NAME)
        normalized = PixelNormalization(spec.mean, spec.std, integer, name="normalize")(pixels)
        logits = keras.layers.Activation("linear", name=OUTPUT_NAME)(network(normalized))
        app = keras.Model(pixels, logits, name="mobilenet_v3_large_stock_app")
        content = convert(app, spec, mode, calibration if integer else None)
        yield Candidate("keras.applications.MobileNetV3Large", "stock", mode, content, params, macs)


def candidates(target: str | Path, *, teacher: str | None = None,
               modes: tuple[str, ...] = tuple(MODES), calibration_images: int = 64,
               stock: bool = False) -> list[Candidate]:
    """What to time for ``target``: a run directory, a ``.keras`` network or a ``.tflite``;
    with ``stock``, keras.applications' MobileNetV3-Large in the same modes beside it."""
    target = Path(target)
    rng = np.random.default_rng(0)
    if target.suffix == TFLITE_SUFFIX:
        model = TFLiteModel(target)
        found = [Candidate(target.stem, "student", infer_mode(model), model.content, None, None)]
        spec = PreprocessingSpec(image_size=model.input_shape[0], channels=model.input_shape[-1])
        num_classes = int(model.outputs[0]["shape"][-1])
    elif target.is_dir():
        run = TrainedRun.open(target)
        spec, num_classes = run.spec, len(run.label_names)
        train = run.split("train")
        rows = np.sort(rng.choice(len(train), min(calibration_images, len(train)), replace=False))
        qat_path = run.qat_model_path()
        calibration = np.concatenate(list(iter_pixel_batches(train.select(rows), spec)))
        found = list(_network_candidates(run.model_name, "student", run.network(), spec, modes,
                                         calibration, load_model(qat_path) if qat_path else None))
        teacher = teacher or _run_teacher(run)
    elif target.suffix in (KERAS_SUFFIX, QAT_SUFFIX):
        network = load_model(target)
        spec = model_preprocessing(target, int(network.input_shape[1]))
        num_classes = int(network.output_shape[-1])
        calibration = rng.integers(0, 256, (calibration_images, *spec.input_shape), np.uint8)
        found = list(_network_candidates(target.stem, "student", network, spec, modes, calibration))
    else:
        raise TfcxrError(f"{target}: give a run directory, a .keras model or a .tflite file")
    if stock:
        calibration = rng.integers(0, 256, (calibration_images, *spec.input_shape), np.uint8)
        found += _stock_candidates(spec, num_classes, modes, calibration)
    teacher_model = _teacher(teacher, spec, num_classes)
    if teacher_model is not None:
        found += _network_candidates(teacher_model.name, "teacher", teacher_model, spec,
                                     ("float32",), None)
    return found


def benchmark(found: list[Candidate], *, threads: int | None = None, runs: int = 50,
              rounds: int = 5, warmup: int = 5) -> list[BenchmarkRow]:
    """Time every candidate, interleaved over ``rounds``, ``runs`` invocations each in total."""
    models = [TFLiteModel(c.content, num_threads=threads) for c in found]
    for model in models:
        time_invocations(model, warmup)
    timings = [[] for _ in models]
    per_round = max(1, runs // rounds)
    for _ in range(rounds):
        for model, sink in zip(models, timings):
            sink += time_invocations(model, per_round)
    return [BenchmarkRow(c.name, c.role, c.mode, c.parameters, c.macs, len(c.content),
                         summarize(t, threads), model.delegation(), c.int8_graph)
            for c, t, model in zip(found, timings, models)]
