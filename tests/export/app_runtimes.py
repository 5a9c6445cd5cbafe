"""The two outside runtimes Android apps load a classifier with, driven from Python:

- MediaPipe Tasks ``ImageClassifier`` (``mediapipe`` 1.2.2, the C++ Task graph Android's
  ``com.google.mediapipe:tasks-vision`` runs), installed by CI as
  ``pip install --no-deps mediapipe==1.2.2`` (its vision API needs only absl, flatbuffers, numpy
  and matplotlib, already there; ``--no-deps`` keeps its opencv-contrib ``cv2`` from shadowing
  opencv-python-headless);
- the TFLite Task Library ``ImageClassifier`` (``tflite-support`` 0.4.4, as
  ``org.tensorflow:tensorflow-lite-task-vision``): ``pip install --no-deps tflite-support==0.4.4
  libusb-package``.

Each returns, per image, the classification head's categories in the model's label order as
``(name, score)`` pairs: all labels (max_results -1, no score threshold), sorted back by index.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

CI = os.environ.get("CI") == "true"


def _require(module: str, install: str):
    if importlib.util.find_spec(module) is None:
        if CI:
            pytest.fail(f"{module} is not installed; .ci/run installs it: {install}")
        pytest.skip(f"{module} not installed: {install}")


def mediapipe_classify(model_path, images: np.ndarray) -> list[list[tuple[str, float]]]:
    """``images``: [N, H, W, 3] uint8 RGB at the model's input size (no resizing happens)."""
    _require("mediapipe", "pip install --no-deps mediapipe==1.2.2")
    import mediapipe as mp
    from mediapipe.tasks.python.core.base_options import BaseOptions
    from mediapipe.tasks.python.vision import image_classifier

    options = image_classifier.ImageClassifierOptions(
        base_options=BaseOptions(model_asset_path=str(model_path)), max_results=-1,
        score_threshold=0.0)
    results = []
    with image_classifier.ImageClassifier.create_from_options(options) as classifier:
        for image in images:
            frame = mp.Image(image_format=mp.ImageFormat.SRGB,
                             data=np.ascontiguousarray(image, np.uint8))
            head = classifier.classify(frame).classifications[0]
            results.append([(c.category_name, c.score)
                            for c in sorted(head.categories, key=lambda c: c.index)])
    return results


# The Task Library's Python API cannot share a process with TensorFlow 2.21 (both register a
# pybind11 type "StatusCode"), and it calls protobuf's MessageFactory.GetPrototype, which
# protobuf 5 removed: it runs in a child process without TensorFlow, on protobuf's pure-Python
# implementation, with GetPrototype supplied as GetMessageClass.
_TASK_LIBRARY = r"""
import ctypes, glob, importlib.util, json, os, sys
import numpy as np
sys.modules["tensorflow"] = None
from google.protobuf import message_factory
message_factory.MessageFactory.GetPrototype = lambda self, d: message_factory.GetMessageClass(d)
usb = importlib.util.find_spec("libusb_package")
ctypes.CDLL(glob.glob(os.path.join(usb.submodule_search_locations[0], "libusb*.so*"))[0],
            mode=ctypes.RTLD_GLOBAL)
from tflite_support.task import core, processor, vision
model, images, out = sys.argv[1:]
try:
    classifier = vision.ImageClassifier.create_from_options(vision.ImageClassifierOptions(
        base_options=core.BaseOptions(file_name=model),
        classification_options=processor.ClassificationOptions(max_results=-1,
                                                                score_threshold=0.0)))
except Exception as e:
    json.dump({"error": str(e)}, open(out, "w")); sys.exit(0)
rows = []
for image in np.load(images):
    head = classifier.classify(vision.TensorImage.create_from_array(image)).classifications[0]
    rows.append([(c.category_name, c.score) for c in sorted(head.categories,
                                                            key=lambda c: c.index)])
json.dump({"results": rows}, open(out, "w"))
"""


class RuntimeRefused(Exception):
    """The runtime would not load the model; the message is the runtime's own."""


def task_library_classify(model_path, images: np.ndarray, work) -> list[list[tuple[str, float]]]:
    """As ``mediapipe_classify``, through the Task Library; ``work``: a scratch folder.
    Raises ``RuntimeRefused`` with the library's message when it will not load the model."""
    for module, install in (("tflite_support", "tflite-support==0.4.4"),
                            ("libusb_package", "libusb-package")):
        _require(module, f"pip install --no-deps {install}")
    work = Path(work)
    np.save(work / "images.npy", np.ascontiguousarray(images, np.uint8))
    env = {**os.environ, "PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION": "python",
           "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run([sys.executable, "-c", _TASK_LIBRARY, str(model_path),
                           str(work / "images.npy"), str(work / "out.json")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads((work / "out.json").read_text())
    if "error" in answer:
        raise RuntimeRefused(answer["error"])
    return [[(name, score) for name, score in row] for row in answer["results"]]
