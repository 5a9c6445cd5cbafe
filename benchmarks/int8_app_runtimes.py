"""An exported .tflite through the runtimes Android apps load classifiers with (MediaPipe Tasks and
the TFLite Task Library ``ImageClassifier``), on a run's test films: every label must come back
named, in order, scored sigmoid(tfcxr's logit) within one step of the int8 logits (1e-5 for
float outputs). The drivers are the test suite's (``tests/export/app_runtimes.py``).

    PYTHONPATH=. python benchmarks/int8_app_runtimes.py RUN RUN/export/int8/MODEL.tflite [--films 32]
"""
import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "export"))
from app_runtimes import mediapipe_classify, task_library_classify  # noqa: E402

from tfcxr.runs.predictor import iter_pixel_batches  # noqa: E402
from tfcxr.runs.tflite import TFLiteModel  # noqa: E402
from tfcxr.runs.trained import TrainedRun  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("run")
parser.add_argument("tflite")
parser.add_argument("--films", type=int, default=32)
args = parser.parse_args()
run = TrainedRun.open(args.run)
test = run.split("test")
films = next(iter_pixel_batches(test.select(np.arange(min(args.films, len(test)))), run.spec,
                                batch_size=args.films))
model = TFLiteModel(args.tflite)
source = model.dequantized_from(model.logits_detail)
tolerance = 1e-5 if source is None else float(source["quantization"][0])
expected = 1.0 / (1.0 + np.exp(-model.logits(films).astype(np.float64)))
print(f"{args.tflite}: {len(films)} test films, {len(run.label_names)} labels, "
      f"tolerance {tolerance:.3g}, XNNPACK {model.delegation()}")
failed = False
with tempfile.TemporaryDirectory() as work:
    for runtime, results in (("MediaPipe Tasks", mediapipe_classify(args.tflite, films)),
                             ("Task Library", task_library_classify(args.tflite, films, work))):
        names = all([name for name, _ in row] == run.label_names for row in results)
        scores = np.array([[score for _, score in row] for row in results])
        worst = float(np.abs(scores - expected).max())
        ok = names and worst <= tolerance
        failed |= not ok
        print(f"{runtime}: labels named in order {names}; max |score - sigmoid(logit)| "
              f"{worst:.3g} -> {'ok' if ok else 'FAIL'}")
sys.exit(1 if failed else 0)
