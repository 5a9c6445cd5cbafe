"""``tfcxr qat``, ``tfcxr export-tflite``, ``tfcxr parity``, ``tfcxr benchmark``: thin over
tfcxr.runs.qat and tfcxr.export."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tfcxr.cli import main
from tfcxr.errors import TfcxrError

MODE_NAMES = ("float32", "float16", "dynamic", "int8")
run_option = click.option("--run", "run_dir", type=click.Path(file_okay=False, exists=True),
                          help="A finished run directory (from tfcxr distill or train-teacher).")


def int8_graph_summary(graph: dict) -> str:
    """One line per int8 graph the exporter tried: passed or why not, and XNNPACK's partitions."""
    lines = []
    for t in graph["tried"]:
        outside = ", ".join(f"{op} x{n}" for op, n in t["outside"].items()) or "nothing"
        verdict = "passed the gate" if t["passed"] else f"failed the gate ({'; '.join(t['failures'])})"
        lines.append(f"int8 graph {t['graph']!r}: {verdict}; XNNPACK partitions {t['partitions']}, "
                     f"outside: {outside}")
    return "\n".join(lines + [f"wrote the {graph['written']!r} graph"])


@main.command("qat")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="The distillation run whose student to fine-tune.")
@click.option("--epochs", type=click.IntRange(1), default=None, help="Override qat.epochs (default 2).")
@click.option("--learning-rate", type=click.FloatRange(0, min_open=True), default=None,
              help="Override qat.learning_rate (default 1e-4).")
@click.option("--quiet", "-q", is_flag=True, help="No per-step progress bar.")
def qat_command(run_dir, epochs, learning_rate, quiet):
    """Quantization-aware fine-tuning of a run's student, keeping its distillation loss.

    Writes RUN/qat/ (best.h5, last.h5, metrics, run.json); export-tflite --mode int8 then
    converts the QAT model instead of quantising after training."""
    from tfcxr.runs.qat import qat_finetune

    result = qat_finetune(run_dir, epochs=epochs, learning_rate=learning_rate,
                          verbose=2 if quiet else 1)
    click.echo(f"QAT: best val AUC {result.best_val_auc:.4f} over {result.epochs} epoch(s); "
               f"model in {result.best_model}")


@main.command("export-tflite")
@click.option("--run", "run_dir", required=True, type=click.Path(file_okay=False, exists=True),
              help="The finished run whose student to export.")
@click.option("--mode", "-m", "modes", multiple=True, type=click.Choice(MODE_NAMES + ("all",)),
              default=("int8",), show_default=True,
              help="Export mode; repeat for several, or 'all'. int8 uses RUN/qat when tfcxr qat ran.")
@click.option("--out", "-O", type=click.Path(), default=None,
              help="Output folder (default RUN/export/MODE) or, for one mode, a .tflite path.")
@click.option("--force", is_flag=True, help="Write the model even if it fails the parity gate.")
@click.option("--gradcam", is_flag=True,
              help="Add a second output 'gradcam': every label's Grad-CAM map [1, L, h, w], "
                   "computed in the model (no autodiff on the phone).")
@click.option("--ptq", is_flag=True,
              help="int8 by post-training quantization even when RUN/qat holds a QAT model.")
@click.option("--calibration-images", type=click.IntRange(1), default=None,
              help="Training images that calibrate post-training int8 [default: 500, or the whole "
                   "train split when smaller (tfcxr.export.exporter.CALIBRATION_IMAGES)].")
@click.option("--parity-split", default="test", show_default=True,
              help="Split the parity gate scores (a split name or 'all').")
@click.option("--threshold-split", default="val", show_default=True,
              help="Split the per-label operating thresholds are chosen on.")
@click.option("--json", "as_json", is_flag=True, help="Print each parity report as JSON.")
def export_tflite_command(run_dir, modes, out, force, gradcam, ptq, calibration_images, parity_split,
                          threshold_split, as_json):
    """Export a run's student to .tflite with metadata, labels.txt, thresholds.json and
    model_card.json, after checking it scores like the Keras model (the parity gate).

    \b
    Input:  'pixels' [1, S, S, 3], RGB 0-255 (float32; uint8 for int8)
    Output: 'logits' [1, L] float32 in every mode (int8 computes them in int8 and dequantizes
    them in its last op); probability = sigmoid(logit)"""
    from tfcxr.export.exporter import CALIBRATION_IMAGES, export_tflite

    modes = MODE_NAMES if "all" in modes else tuple(dict.fromkeys(modes))
    if out and Path(out).suffix == ".tflite" and len(modes) > 1:
        raise click.UsageError("--out FILE.tflite takes one --mode; give a folder for several")
    failed = {}
    for mode in modes:
        click.echo(f"exporting {mode} ...", err=True)
        try:
            result = export_tflite(run_dir, mode, out if out and len(modes) == 1 else
                                   (Path(out) / mode if out else None), force=force,
                                   calibration_images=calibration_images or CALIBRATION_IMAGES,
                                   parity_split=parity_split, threshold_split=threshold_split,
                                   use_qat=not ptq, gradcam=gradcam)
        except TfcxrError as e:
            if len(modes) == 1:
                raise
            failed[mode] = str(e)
            click.echo(f"{mode}: NOT written: {e}")
            continue
        click.echo(result.parity.to_json() if as_json else result.parity.summary())
        size = result.card["model"]["size_bytes"]
        note = "" if result.parity.passed else " (FAILED the parity gate, written because of --force)"
        if "gradcam" in result.card:
            click.echo(gradcam_summary(result.card["gradcam"]["vs_keras_grad_cam"]))
        if "int8_graph" in result.card and not as_json:
            click.echo(int8_graph_summary(result.card["int8_graph"]))
        click.echo(f"wrote {result.tflite} ({size / 1e6:.2f} MB){note} and "
                   f"{', '.join(p.name for p in result.files.values())}")
    if failed:
        written = [mode for mode in modes if mode not in failed]
        raise click.ClickException(
            f"{len(failed)} of {len(modes)} modes failed ({', '.join(failed)}); "
            f"written: {', '.join(written) or 'none'}")


def gradcam_summary(check: dict) -> str:
    """The Grad-CAM check in words; the correlation is undefined (None) when the maps are flat."""
    head = f"gradcam output vs Keras Grad-CAM on {check['films']} films: "
    if check.get("correlation_mean") is None:
        return head + ("correlation undefined: " + check.get("undefined", "the maps are constant"))
    return head + (f"correlation mean {check['correlation_mean']:.4f}, "
                   f"min {check['correlation_min']:.4f} over {check['labels_compared']} labels"
                   + (f" ({check['undefined']})" if check.get("undefined") else ""))


@main.command("parity")
@click.option("--keras", "keras_path", required=True, type=click.Path(exists=True),
              help="The Keras model: RUN/best.keras, or RUN/qat/best.h5.")
@click.option("--tflite", "tflite_path", required=True, type=click.Path(dir_okay=False, exists=True),
              help="The exported .tflite.")
@run_option
@click.option("--split", default="test", show_default=True, help="Split to score, or 'all'.")
@click.option("--mode", type=click.Choice(MODE_NAMES), default=None,
              help="Tolerances to apply (default: inferred from the .tflite's tensor types).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def parity_command(keras_path, tflite_path, run_dir, split, mode, as_json):
    """Score a .tflite and its Keras model on the same films; exit 1 when the mode's tolerance
    (float32: |dp| <= 1e-4; float16: 1e-2; int8: |dAUC| <= 0.01 per label with >= 10 positives,
    mean |dAUC| <= 0.005) is not met. Data and labels come from the model's run."""
    from tfcxr.export.harness import run_parity

    report = run_parity(keras_path, tflite_path, run=run_dir, split=split, mode=mode)
    click.echo(report.to_json() if as_json else report.summary())
    if not report.passed:
        raise SystemExit(1)


@main.command("benchmark")
@click.argument("target", type=click.Path(exists=True))
@click.option("--teacher", default=None,
              help="Teacher to time beside it: a registered name (random weights) or a .keras "
                   "file. Default: the run's teacher.")
@click.option("--mode", "-m", "modes", multiple=True, type=click.Choice(MODE_NAMES),
              default=MODE_NAMES, show_default=True, help="Student export modes to time.")
@click.option("--threads", type=click.IntRange(1), default=None,
              help="Interpreter threads (default: the runtime's choice).")
@click.option("--runs", type=click.IntRange(5), default=50, show_default=True,
              help="Timed invocations per model.")
@click.option("--stock", is_flag=True,
              help="Also time keras.applications' MobileNetV3-Large (random weights) in the "
                   "same modes: a reference built outside tfcxr.")
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def benchmark_command(target, teacher, modes, threads, runs, stock, as_json):
    """Size and per-image latency (median, p90) of TARGET (a run directory, a .keras model or a
    .tflite) in each export mode, with the teacher timed in the same run, and how XNNPACK took
    each file: its partitions (1 = the whole graph) and the ops it left outside."""
    from tfcxr.export.benchmark import benchmark, candidates
    from tfcxr.export.latency import adb_benchmark_command

    found = candidates(target, teacher=teacher, modes=tuple(modes), stock=stock)
    rows = benchmark(found, threads=threads, runs=runs)
    if as_json:
        click.echo(json.dumps([row.to_dict() for row in rows], indent=2))
        return
    teacher_ms = next((r.latency.median_ms for r in rows if r.role == "teacher"), None)
    float_ms = {r.name: r.latency.median_ms for r in rows if r.mode == "float32"}
    header = ("model", "mode", "params", "GMACs", "size MB", "median ms", "p90 ms",
              "x teacher", "x float32", "partitions", "outside XNNPACK")
    lines = [header]
    for r in rows:
        own_float = float_ms.get(r.name) if r.role != "teacher" else None
        outside = ", ".join(f"{op} x{n}" for op, n in r.delegation["outside"].items())
        lines.append((r.name, r.label, f"{r.parameters:,}" if r.parameters else "-",
                      f"{r.macs / 1e9:.3f}" if r.macs else "-", f"{r.size_bytes / 1e6:.2f}",
                      f"{r.latency.median_ms:.2f}", f"{r.latency.p90_ms:.2f}",
                      f"{r.latency.median_ms / teacher_ms:.3f}" if teacher_ms else "-",
                      f"{r.latency.median_ms / own_float:.2f}" if own_float else "-",
                      str(r.delegation["partitions"]), outside or "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
    click.echo(f"\n{len(rows)} models, {runs} timed runs each, threads={threads or 'default'}. "
               "On a phone (TFLite benchmark_model):")
    click.echo("  " + adb_benchmark_command("MODEL.tflite", threads or 4))
