"""An ``EvaluationReport`` as a paper-ready Markdown table, a standalone HTML page and figures.

The HTML page carries its CSS inline and its figures as base64 ``data:`` URIs: one file that
opens offline, attaches to an e-mail or a review ticket, and loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfcxr.evaluation.report import EvaluationReport

SUBSET_TITLES = {"chexpert_competition": "CheXpert competition mean AUC (5 labels)"}
COLUMNS = ("Label", "AUC (95% CI)", "Positives", "Negatives", "Threshold", "Sensitivity",
           "Specificity", "PPV", "F1", "ECE", "Brier")

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1280px; color: #1b1b1b; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.meta { color: #555; } .headline { font-size: 1.15em; margin: 0.8em 0; }
table { border-collapse: collapse; font-size: 0.9em; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th { background: #f3f5f7; } td:first-child, th:first-child { text-align: left; }
tr.mean td { font-weight: 600; border-top: 2px solid #999; }
img { max-width: 100%; height: auto; } .notes li { color: #7a4b00; }
"""


def fmt(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def format_interval(value, signed: bool = False) -> str:
    """``0.842 (0.801, 0.880)``; just the estimate without an interval; ``n/a`` without either."""
    if math.isnan(value.estimate):
        return "n/a"
    f = "{:+.3f}" if signed else "{:.3f}"
    if math.isnan(value.low):
        return f.format(value.estimate)
    return f"{f.format(value.estimate)} ({f.format(value.low)}, {f.format(value.high)})"


def format_p(p: float) -> str:
    return "n/a" if math.isnan(p) else ("<0.001" if p < 0.001 else f"{p:.3f}")


def _table_rows(report: EvaluationReport) -> list[list[str]]:
    rows = [[r.label, format_interval(r.auc), str(r.positives), str(r.negatives),
             fmt(r.threshold) + ("*" if r.threshold_method == "default_no_positives" else ""),
             fmt(r.sensitivity), fmt(r.specificity), fmt(r.ppv), fmt(r.f1), fmt(r.ece),
             fmt(r.brier)] for r in report.rows]
    rows.append(["Mean", format_interval(report.mean_auc), *[""] * (len(COLUMNS) - 2)])
    for name, interval in report.subsets.items():
        rows.append([SUBSET_TITLES.get(name, f"{name} mean"), format_interval(interval),
                     *[""] * (len(COLUMNS) - 2)])
    return rows


def _summary(report: EvaluationReport) -> list[str]:
    lines = [f"Mean AUC over {sum(1 for r in report.rows if not math.isnan(r.auc.estimate))} "
             f"labels: {format_interval(report.mean_auc)}"]
    lines += [f"{SUBSET_TITLES.get(n, n + ' mean AUC')}: {format_interval(i)}"
              for n, i in report.subsets.items()]
    return lines


def _method(report: EvaluationReport) -> str:
    return (f"{report.n_images} images from {report.n_patients} patients. AUC intervals: "
            f"{report.confidence:.0%} patient-level bootstrap percentile intervals, "
            f"{report.n_boot} resamples (seed {report.seed}). Thresholds: "
            f"{report.thresholds_source} (* = default 0.5, label lacks a class). Calibration: "
            f"{report.calibration_bins} {report.calibration_strategy} bins.")


def to_markdown(report: EvaluationReport) -> str:
    lines = [f"# Evaluation: {report.model_name}", ""]
    if report.model_path:
        lines.append(f"Model: `{report.model_path}`  ")
    if report.data:
        lines.append(f"Data: {report.data}  ")
    lines += [f"{line}  " for line in _summary(report)] + [""]
    lines += ["| " + " | ".join(COLUMNS) + " |", "|---|" + "---:|" * (len(COLUMNS) - 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in _table_rows(report)]
    lines += ["", _method(report)]
    lines += [""] + [f"- {note}" for note in report.notes] if report.notes else []
    return "\n".join(lines) + "\n"


def to_html(report: EvaluationReport, images: Mapping[str, Path]) -> str:
    """Standalone page; ``images`` (e.g. roc, calibration -> PNG path) are embedded inline."""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    body = []
    for cells in _table_rows(report):
        css = ' class="mean"' if cells[0] == "Mean" else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    meta = [f"Model: <code>{e(report.model_path)}</code>" if report.model_path else "",
            f"Data: {e(report.data)}" if report.data else ""]
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Evaluation: {e(report.model_name)}</title><style>{CSS}</style></head><body>",
        f"<h1>Evaluation: {e(report.model_name)}</h1>",
        "".join(f'<div class="meta">{m}</div>' for m in meta if m),
        "".join(f'<div class="headline">{e(line)}</div>' for line in _summary(report)),
        f'<h2>Per-label results</h2><table id="labels"><thead><tr>{head}</tr></thead>',
        f"<tbody>{''.join(body)}</tbody></table>", f'<p class="meta">{e(_method(report))}</p>']
    if report.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{e(n)}</li>" for n in report.notes)
                     + "</ul>")
    titles = {"roc": "ROC curves", "calibration": "Calibration (reliability diagrams)"}
    for key, path in images.items():
        data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
        parts.append(f"<h2>{e(titles.get(key, key))}</h2>"
                     f'<img alt="{e(titles.get(key, key))}" src="data:image/png;base64,{data}">')
    parts.append(f'<p class="meta">tfcxr {e(report.tfcxr_version)}</p></body></html>')
    return "\n".join(parts) + "\n"


def figures(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    """``roc.png`` and ``calibration.png`` for the labels that have both classes."""
    from tfcxr.evaluation.plots import ReliabilityLine, RocLine, plot_reliability, plot_roc

    rows = [r for r in report.rows if r.roc.get("fpr")]
    roc = {r.label: [RocLine(f"AUC {format_interval(r.auc)}", r.roc["fpr"], r.roc["tpr"])]
           for r in rows}
    reliability = {r.label: [ReliabilityLine(f"ECE {fmt(r.ece)}",
                                             r.reliability["mean_predicted"],
                                             r.reliability["fraction_positive"])] for r in rows}
    title = f"{report.model_name}: {report.n_images} images"
    return {"roc": plot_roc(roc, out_dir / "roc.png", f"{title}, ROC (AUC, 95% CI)"),
            "calibration": plot_reliability(reliability, out_dir / "calibration.png",
                                            f"{title}, calibration")}
