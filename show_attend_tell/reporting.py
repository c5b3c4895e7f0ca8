"""Reports as markdown: the one table builder, the evaluation page (`metrics.md`), the grounding table, and the sections
the scripts append to a RESULTS.md.

Every script that prints or logs a table uses these: `training/evaluate_captioner.py` (`metrics_markdown`), the
benchmarks (`markdown_table`, `grounding_table`, `mean_spread`, `results_section`).
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch

from .metrics import CAPTION_METRICS

# The rates of a `summarize_pointing` entry, in table order: the attention peak, the centre and random-cell baselines.
POINTING_RATES = ("hit_rate", "center_baseline", "random_baseline")


def percent(value: float | None) -> str:
    """A rate (0-1) x100 with one decimal; "n/a" for None (nothing to score)."""
    return "n/a" if value is None else f"{100 * value:.1f}"


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"
    return str(value)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]], align: str | None = None) -> str:
    """A markdown table. Floats get three significant digits (no decimals from 100 up), other cells `str()`.

    `align`: one letter per column, `l` (left, the default) or `r` (right)."""
    align = align or "l" * len(headers)
    if len(align) != len(headers) or set(align) - {"l", "r"}:
        raise ValueError(f"align must be one 'l' or 'r' per column ({len(headers)} columns), got {align!r}")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(_cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def mean_spread(values: Iterable[float | None], scale: float = 1.0, digits: int = 1) -> str:
    """`mean ± standard deviation` of the values (x `scale`, `digits` decimals) that are not None; one value alone,
    "n/a" for none."""
    values = [scale * value for value in values if value is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


# --------------------------------------------------------------------------------------------------------------------
# The evaluation page (metrics.md of training/evaluate_captioner.py)
# --------------------------------------------------------------------------------------------------------------------


def metrics_markdown(report: Mapping[str, Any]) -> str:
    """A markdown summary of a `metrics.json` report: caption metrics (x100) and the grounding table."""
    decoding = report["decoding"]
    names = [metric.name for metric in CAPTION_METRICS if metric.name in report["metrics"]]
    lines = [
        f"## Evaluation of `{report['model']}` on `{report['dataset']}` ({report['split']}, "
        f"{report['num_images']} images)",
        "",
        f"Decoding: beam size {decoding['num_beams']}, length penalty {decoding['length_penalty']}, "
        f"at most {decoding['max_new_tokens']} new tokens"
        + (f", no repeated {decoding['no_repeat_ngram_size']}-grams" if decoding.get("no_repeat_ngram_size") else "")
        + ". Scores x100 (pycocoevalcap).",
        "",
        markdown_table(names, [[percent(report["metrics"][name]) for name in names]], align="r" * len(names)),
    ]
    grounding = report.get("grounding")
    if grounding is not None:
        rows = [("**overall**", grounding["overall"]), *grounding["per_category"].items()]
        lines += [
            "",
            "### Attention grounding (pointing game)",
            "",
            "Share of generated object words whose attention peak falls inside a box of that object, versus always "
            "pointing at the image centre and at a uniformly random grid cell (%).",
            "",
            markdown_table(
                ["Category", "Words", "Attention peak", "Centre baseline", "Random cell"],
                [[name, rates["words"], *(percent(rates[key]) for key in POINTING_RATES)] for name, rates in rows],
                align="lrrrr",
            ),
        ]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------------------------
# The grounding table (benchmarks/bench_grounding.py): captions, pointing and focus of named evaluation reports
# --------------------------------------------------------------------------------------------------------------------

GROUNDING_HEADERS = ["model", "images", "CIDEr", "BLEU-4", "exact", "scorer", "words", "hit %", "centre %", "random %",
                     "hit - centre (95% CI)", "entropy % of uniform", "peak (uniform)"]  # fmt: skip


def center_margin(rates: Mapping[str, Any]) -> str:
    """`hit - centre` in points with its 95% interval (1.96 paired standard errors) from a `summarize_pointing` entry:
    "+12.7 ± 9.6"; without an error (under two words) the margin alone, "n/a" with nothing scored."""
    if rates["hit_rate"] is None:
        return "n/a"
    margin = f"{100 * (rates['hit_rate'] - rates['center_baseline']):+.1f}"
    error = rates["center_margin_se"]
    return margin if error is None else f"{margin} ± {196 * error:.1f}"


def grounding_rows(name: str, scores: Mapping[str, Any]) -> list[list[str]]:
    """Cells (`GROUNDING_HEADERS`) of one `EvaluationReport.scores()`: one row per pointing scorer."""
    attention, metrics = scores["attention"], scores["metrics"]
    peak = "n/a" if attention["peak"] is None else f"{attention['peak']:.3f} ({attention['uniform_peak']:.3f})"
    focus = [percent(attention["entropy_ratio"]), peak]
    head = [name, str(scores["num_images"]), f"{metrics['CIDEr']:.3f}", f"{metrics['BLEU-4']:.3f}"]
    head.append(percent(scores["exact"]))
    if not scores["pointing"]:
        return [[*head, "-", "0", "n/a", "n/a", "n/a", "n/a", *focus]]
    rows = []
    for scorer, summary in scores["pointing"].items():
        overall = summary["overall"]
        rates = [percent(overall[key]) for key in POINTING_RATES]
        rows.append([*head, scorer, str(overall["words"]), *rates, center_margin(overall), *focus])
    return rows


def grounding_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of named `EvaluationReport.scores()`."""
    return markdown_table(
        GROUNDING_HEADERS, [row for name, scores in reports.items() for row in grounding_rows(name, scores)]
    )


# --------------------------------------------------------------------------------------------------------------------
# RESULTS.md sections
# --------------------------------------------------------------------------------------------------------------------


def machine_line() -> str:
    """When and where a measurement ran: time, cores, processor, torch and its threads, load average."""
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (
        f"{datetime.datetime.now().isoformat(timespec='minutes')}, {os.cpu_count()} CPU cores "
        f"({platform.processor() or platform.machine()}), torch {torch.__version__} with {torch.get_num_threads()} "
        f"threads, load average {load}"
    )


def results_section(title: str, body: str, quick: bool = False) -> str:
    """A RESULTS.md section: `## title` (marked `--quick` for smoke runs), the machine line, then `body`."""
    return f"## {title}{' (--quick)' if quick else ''}\n\n{machine_line()}\n\n{body.strip()}\n"


__all__ = [
    "GROUNDING_HEADERS",
    "POINTING_RATES",
    "center_margin",
    "grounding_rows",
    "grounding_table",
    "machine_line",
    "markdown_table",
    "mean_spread",
    "metrics_markdown",
    "percent",
    "results_section",
]
