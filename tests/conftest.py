"""What every test shares: the NIH sample, the session's NIH run and its exports, and the rules.

- The real NIH sample lives in ``../shared/data/nih-sample`` beside the clone. Tests that need it
  skip on a bare clone (counted in one line of the summary); under ``CI=true`` a missing sample
  stops the run before any test. ``TFCXR_TEST_SHARED`` points this file (and only this file) at
  another ``shared`` folder, e.g. a path that does not exist to try a bare clone.
- The suite runs on several processes (pytest-xdist, README command 2). The expensive session
  objects (``nih_run``, ``nih_exports``, ``phone_run``, ``phone_exports``) are built ONCE for all
  workers, under a file lock, in the temporary folder the workers share; each worker then opens
  the same files.
- Those objects are READ-ONLY to tests. A test that changes a run (QAT into ``RUN/qat``, a report
  into ``RUN/reports``) works on its own copy (``copy_run``). Every file of the session run is
  hashed when it is built and checked again when the session ends, so a test that writes into it
  fails the session instead of silently changing what later tests see.
"""

import fcntl
import hashlib
import json
import os
import pickle
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("TFCXR_TEST_SHARED", REPO.parent / "shared"))
NIH_SAMPLE = SHARED / "data" / "nih-sample"
NEEDS_SAMPLE = "needs the NIH sample"  # the skip reason's start, counted in the summary


def _sample_present() -> bool:
    return (NIH_SAMPLE / "Data_Entry_2017_v2020.csv").is_file()


def _cores() -> int:
    """The cores this process may run on (its CPU affinity, where the OS reports one): the one
    count both the number of workers and each worker's threads are derived from."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _share_the_cores():
    """Several workers on a few cores: each process (and what it starts: notebook kernels, the
    resumed run) gets its share of the cores for TensorFlow's, oneDNN's and torch's thread pools,
    instead of every process starting a thread per core, which only adds switching. Read by
    TensorFlow when it starts, so set before anything imports it."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, _cores() // workers))
        for name in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
            os.environ.setdefault(name, threads)


_share_the_cores()


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, like the scheduler's below
def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than there are cores (still capped by ``--maxprocesses``).
    Each worker leaves its core idle at times (subprocesses it waits for, file I/O, the
    single-threaded parts of tracing and TFLite conversion); a third worker on two cores fills
    those gaps. Measured on this 2-core machine, the same clone one run after the other: 19 min
    1 s of pytest with 2 workers, 17 min 44 s with 3, the same CPU time (30 min 30 s user).
    ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still overrides it, as in pytest-xdist."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None  # pytest-xdist's own hook reads it
    return _cores() + 1


def pytest_sessionstart(session):
    """Under CI=true a missing NIH sample stops the run: CI must not go green with it skipped."""
    if os.environ.get("CI", "").lower() == "true" and not _sample_present():
        pytest.exit(f"CI=true but the NIH sample is missing: {NIH_SAMPLE} (clone tfcxr beside "
                    "shared/, or set TFCXR_TEST_SHARED); refusing to pass with the real-data "
                    "tests skipped", returncode=3)


def pytest_terminal_summary(terminalreporter):
    """Skips in a few lines (``-r`` leaves them out: one line per test under xdist): the tests a
    bare clone cannot run, in one line, then any other reason with its count."""
    reasons = {}
    for report in terminalreporter.stats.get("skipped", []):
        reason = str(report.longrepr[2]) if isinstance(report.longrepr, tuple) else "skipped"
        key = NEEDS_SAMPLE if NEEDS_SAMPLE in reason else reason.removeprefix("Skipped: ")
        reasons[key] = reasons.get(key, 0) + 1
    if reasons.get(NEEDS_SAMPLE):
        terminalreporter.write_line(
            f"NOT RUN: {reasons.pop(NEEDS_SAMPLE)} tests that need the real NIH sample, absent "
            f"at {NIH_SAMPLE} (readers, pipeline, runs, export, evaluation and Grad-CAM on real "
            "films); put the shared/ folder beside the clone to run them", yellow=True, bold=True)
    for reason, count in sorted(reasons.items()):
        terminalreporter.write_line(f"skipped {count}: {reason}", yellow=True)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown (and unused) without it
def pytest_xdist_make_scheduler(config, log):
    """Whole test files to a worker (their module fixtures are built once), handed out in the
    order of ``pytest_collection_modifyitems`` (not xdist's largest-file-first)."""
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False
    return LoadFileScheduling(config, log)


# Files that take minutes on one worker (``--durations``): handed out right after the two builds,
# so that no worker is left running one of them alone at the end of the session.
LONG_FILES = ("test_main_job_chain.py", "test_qat_run.py", "test_run.py")


def pytest_collection_modifyitems(session, config, items):
    """Order the test files for parallel workers (whole files are handed out in this order, see
    ``pytest_xdist_make_scheduler``): first one file that builds the session NIH run and one that
    builds the phone run, so that two workers start the two builds at once; then the long files
    (``LONG_FILES``); then the files that need neither session run; then the others that need
    one, which find it built. Order within a file is kept."""
    def needs(members, fixture):
        return any(fixture in getattr(item, "fixturenames", ()) for item in members)

    files = {}
    for item in items:
        files.setdefault(item.path, []).append(item)
    nih = [path for path, members in files.items() if needs(members, "nih_run")]
    phone = [path for path, members in files.items() if needs(members, "phone_run")]
    builds = [next((p for p in nih if p.name == "test_export.py"), nih[0] if nih else None),
              next((p for p in phone if p not in nih), None)]

    def rank(path):
        if path in builds:
            return builds.index(path)
        if path.name in LONG_FILES:
            return 2 + LONG_FILES.index(path.name) / 10
        return 4 if path in nih or path in phone else 3

    items[:] = [i for path in sorted(files, key=rank) for i in files[path]]


@pytest.fixture(scope="session")
def nih_sample() -> Path:
    """The real 621-image NIH ChestX-ray14 sample, read in place (never copied)."""
    if not _sample_present():
        pytest.skip(f"{NEEDS_SAMPLE} at {NIH_SAMPLE}")
    return NIH_SAMPLE


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Keep the demo dataset cache out of the user's home during tests (shared per session)."""
    monkeypatch.setenv("TFCXR_CACHE", str(tmp_path_factory.getbasetemp() / "tfcxr-cache"))


@pytest.fixture(scope="session")
def assert_parity():
    """The export parity harness as a test helper: compare two models' logits on the same images
    with a mode's tolerances and fail the test with the harness's own report."""
    from tfcxr.export.parity import check_parity

    def check(keras_logits, tflite_logits, labels, mask, label_names, mode, **kwargs):
        report = check_parity(keras_logits, tflite_logits, labels, mask, label_names, mode, **kwargs)
        assert report.passed, report.summary()
        return report

    return check


# -- built once per session, for every worker -----------------------------------------------------

@pytest.fixture(scope="session")
def session_dir(tmp_path_factory) -> Path:
    """A folder all workers of this session share (the workers' base temp's parent under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build_once(folder: Path, build) -> Path:
    """``build(folder)`` once per session: the first worker builds while the others wait on the
    lock; a failed build is remembered, so the other workers fail at once instead of retrying."""
    done, failed = folder.with_name(folder.name + ".done"), folder.with_name(folder.name + ".failed")
    with _locked(folder.with_name(folder.name + ".lock")):
        if failed.exists():
            pytest.fail(f"building {folder.name} failed in another worker: {failed.read_text()}")
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            try:
                build(folder)
            except BaseException as e:
                failed.write_text(repr(e))
                raise
            done.write_text(json.dumps(file_hashes(folder)))
    return folder


def file_hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_unchanged(folder: Path):
    """Fail if any file of a session object was added, removed or changed since it was built."""
    before = json.loads(folder.with_name(folder.name + ".done").read_text())
    after = file_hashes(folder)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, (f"a test wrote into the shared, read-only {folder.name}: {changed[:10]} "
                         "(copy it first: copy_run)")


@pytest.fixture
def copy_run(tmp_path):
    """``copy_run(run)``: a private copy of a run directory in the test's tmp_path, for a test
    that writes into its run (the session's runs are read-only)."""
    def copy(run: Path) -> Path:
        return Path(shutil.copytree(run, tmp_path / f"copy-of-{run.name}",
                                    ignore=shutil.ignore_patterns("tensorboard")))

    return copy


def _build_nih_run(folder: Path, sample: Path):
    from cli_invoke import invoke

    folder.mkdir(parents=True)
    config = {
        "seed": 0,
        "data": {"dataset": "nih", "root": str(sample), "image_size": 64, "batch_size": 32,
                 "cache": True, "options": {"val_fraction": 0.1}},
        "student": {"name": "eeea_net_c2",
                    "train": {"epochs": 3, "learning_rate": 3e-3, "backup_every_steps": 100}},
        "distill": {"alpha": 0.5, "temperature": 2.0},
        "qat": {"epochs": 1, "learning_rate": 1e-5, "schedule": "constant"},
    }
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    invoke("distill", "--teacher-predictions", sample / "chexnet_teacher_probs.csv",
           "--config", folder / "config.yaml", "--out", folder / "run", "--quiet")


@pytest.fixture(scope="session")
def nih_run(nih_sample, session_dir):
    """A small real run to export: EEEA-Net-C2 distilled offline from the real CheXNet probabilities
    of the NIH sample, at 64 px for three epochs. Read-only (see the module docstring).

    Like any student trained on a few hundred films, its scores barely vary between films (logit
    spread ~0.1), so AUC deltas between two of its versions are dominated by reordering within
    that spread: the AUC gate is tested on the real CheXNet scores in test_parity.py."""
    folder = build_once(session_dir / "nih-run", lambda f: _build_nih_run(f, nih_sample))
    yield folder / "run"
    assert_unchanged(folder)


def _build_chexnet_offline_run(folder: Path, sample: Path):
    from cli_invoke import invoke

    folder.mkdir(parents=True)
    invoke("distill", "--dataset", "nih", "--root", sample,
           "--teacher-predictions", sample / "chexnet_teacher_probs.csv",
           "--student", "mobilenet_v3_small", "--image-size", 32, "--batch-size", 32,
           "--epochs", 1, "--out", folder / "run", "-q")


@pytest.fixture(scope="session")
def chexnet_offline_run(nih_sample, session_dir):
    """The quickest real offline run: MobileNetV3-Small distilled from the real CheXNet
    probabilities of the NIH sample, 32 px, one epoch, from the command line alone (no config
    file). For tests of what an offline run is and feeds (its soft loss, QAT against the
    teacher's logits), not of what it learned. Read-only like ``nih_run``."""
    folder = build_once(session_dir / "chexnet-offline-run",
                        lambda f: _build_chexnet_offline_run(f, nih_sample))
    yield folder / "run"
    assert_unchanged(folder)


EXPORT_MODES = ("float32", "float16", "dynamic", "int8")


def _build_exports(folder: Path, run: Path, modes):
    """Export ``run`` in each mode through its gate (never forced), recording the converter's
    raw bytes per mode beside the ExportResults."""
    from tfcxr.export import exporter

    raw = {}
    convert = exporter.convert

    def recording(model, spec, mode, *args, **kwargs):
        raw[mode] = convert(model, spec, mode, *args, **kwargs)
        return raw[mode]

    folder.mkdir(parents=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(exporter, "convert", recording)
        results = {mode: exporter.export_tflite(run, mode, folder / mode, calibration_images=64,
                                                latency_runs=5) for mode in modes}
    (folder / "results.pickle").write_bytes(pickle.dumps((results, raw)))


@pytest.fixture(scope="session")
def nih_exports_and_conversions(nih_run, session_dir):
    """The float modes of ``nih_run`` (ExportResults) and the converter's raw bytes per mode.

    Only the float modes: dynamic and int8 of this short-trained student fail their gates, as
    they should (its scores are flat, see nih_run; a longer-trained one, batch 16 for 10 epochs,
    fails too: int8 Mass dAUC +0.126, +0.062 after ``tfcxr qat``), and no fixture forces a gate:
    ``tests/export/test_export.py`` shows its int8 refused. The quantized modes come from
    ``phone_run``, a student that passes every gate."""
    folder = build_once(session_dir / "nih-exports",
                        lambda f: _build_exports(f, nih_run, ("float32", "float16")))
    yield pickle.loads((folder / "results.pickle").read_bytes())
    assert_unchanged(folder)


@pytest.fixture(scope="session")
def nih_exports(nih_exports_and_conversions):
    return nih_exports_and_conversions[0]


PHONE_STUDENT = {"epochs": 15, "learning_rate": 2e-3, "backup_every_steps": 10_000}


def _build_phone_run(folder: Path):
    from cli_invoke import invoke
    from tfcxr.config import config_path, load_yaml
    from tfcxr.data.demo import DemoSpec, write_demo_dataset

    demo = write_demo_dataset(folder / "demo", DemoSpec(seed=0))
    config = load_yaml(config_path("demo"))
    config["data"]["root"] = str(demo)
    config["student"]["train"].update(PHONE_STUDENT)
    (folder / "config.yaml").write_text(yaml.safe_dump(config))
    invoke("distill", "--student-only", "--config", folder / "config.yaml", "--out", folder / "run",
           "--quiet")


@pytest.fixture(scope="session")
def phone_run(session_dir):
    """A student that has learned enough for every export mode to pass its gate: EEEA-Net-C2
    trained alone on the embedded demo dataset at the demo config's 64 px, 15 epochs at 2e-3
    (2 to 2.5 minutes on one of two workers; test mean AUC 0.83, int8 moves no label's AUC by
    more than 0.0055, dynamic's 99th-percentile |dp| 0.044). At 10 or 12 epochs its int8 fails
    the gate (Effusion dAUC -0.0108, Mass -0.0131), so it stays at 15. Needs no ``../shared``.
    Read-only like ``nih_run``."""
    folder = build_once(session_dir / "phone-run", _build_phone_run)
    yield folder / "run"
    assert_unchanged(folder)


@pytest.fixture(scope="session")
def phone_exports(phone_run, session_dir):
    """Every export mode of ``phone_run`` (ExportResults), each through its gate."""
    folder = build_once(session_dir / "phone-exports",
                        lambda f: _build_exports(f, phone_run, EXPORT_MODES))
    yield pickle.loads((folder / "results.pickle").read_bytes())[0]
    assert_unchanged(folder)
