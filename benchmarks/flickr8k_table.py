"""Flickr8k test results beside the paper's Table 1 (Xu et al. 2015).

    python -m benchmarks.flickr8k_table --run "soft, cross-entropy (the recipe)=runs/flickr8k/eval-test" \
        [--run "LABEL=EVAL_DIR" ...] [--dataset_name ../shared/data/flickr8k] [--no-save]

Each `--run` names the `--output_dir` of a `training.evaluate_captioner` run on the test split (its `metrics.json`);
the model folder that report names gives the training settings (`training_args.json`) and the training wall time
(`val_metrics.json`'s `train_runtime_s`, written by `training.train`). One more row is computed here: the most
frequent training caption, given for every test image and scored by the same metrics code (the library's
pycocoevalcap table), the floor any captioner must clear. Scores x100, as in the paper. The paper's rows are its
published numbers (VGG features, 14x14 grid, its own tokenisation and BLEU script), so they compare in spirit only.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import SHARED_DATA, parse_args, report
from show_attend_tell.metrics import CAPTION_METRICS, compute_caption_metrics
from show_attend_tell.reporting import markdown_table
from training.evaluate_captioner import load_eval_split

FLICKR8K = SHARED_DATA / "flickr8k"
# Table 1 of Xu et al. (2015), Flickr8k: BLEU-1..4 and METEOR (x100).
PAPER_ROWS = {
    "Xu et al. 2015, soft attention (VGG, 14x14)": {
        "BLEU-1": 67.0, "BLEU-2": 44.8, "BLEU-3": 29.9, "BLEU-4": 19.5, "METEOR": 18.93,
    },
    "Xu et al. 2015, hard attention (VGG, 14x14)": {
        "BLEU-1": 67.0, "BLEU-2": 45.7, "BLEU-3": 31.4, "BLEU-4": 21.3, "METEOR": 20.30,
    },
}  # fmt: skip
METRICS = [metric.name for metric in CAPTION_METRICS if not metric.optional]
# The settings shown per run (training_args.json keys).
SETTINGS = ("backbone", "image_size", "feature_index", "attention_type", "alpha_c", "attention_entropy_weight",
            "num_train_epochs", "learning_rate", "per_device_train_batch_size", "min_word_frequency",
            "metric_for_best_model", "model_name_or_path")  # fmt: skip
# Shown only for self-critical runs (`scst_after` set): the others save these options' defaults.
SCST_SETTINGS = ("scst_after", "scst_temperature")


def normalise(caption: str) -> str:
    """Lower case, punctuation dropped, single spaces: "A dog runs ." and "a dog runs" are one caption."""
    return " ".join(re.sub(r"[^\w\s]|_", " ", caption.lower()).split())


def most_frequent_caption(captions: Iterable[Iterable[str]]) -> str:
    """The most frequent normalised caption of a training split (ties: the first seen)."""
    counts = Counter(normalise(caption) for image_captions in captions for caption in image_captions)
    return counts.most_common(1)[0][0]


def frequent_caption_row(dataset_name: str, split: str) -> tuple[str, dict[str, float]]:
    """The most frequent `train` caption and its scores on `split` (every image gets that caption)."""
    caption = most_frequent_caption(load_eval_split(dataset_name, "train")["captions"])
    rows = load_eval_split(dataset_name, split).remove_columns("image").to_list()
    metrics = compute_caption_metrics(
        {row["image_id"]: caption for row in rows}, {row["image_id"]: row["captions"] for row in rows}
    )
    return caption, metrics


def run_row(eval_dir: Path) -> tuple[dict[str, float], str, str]:
    """Metrics of one evaluation, the training wall time and settings of its model (when the folder has them)."""
    evaluation = json.loads((eval_dir / "metrics.json").read_text())
    model_dir = Path(evaluation["model"])
    runtime, settings = "n/a", "n/a"
    if (model_dir / "val_metrics.json").is_file():
        seconds = json.loads((model_dir / "val_metrics.json").read_text()).get("train_runtime_s")
        runtime = "n/a" if seconds is None else f"{seconds / 60:.0f} min"
    if (model_dir / "training_args.json").is_file():
        args = json.loads((model_dir / "training_args.json").read_text())
        shown = SETTINGS + SCST_SETTINGS if args.get("scst_after") is not None else SETTINGS
        settings = ", ".join(f"{name} {args[name]}" for name in shown if args.get(name) is not None)
    decoding = evaluation["decoding"]
    settings += f"; test decoding: beam {decoding['num_beams']}, length penalty {decoding['length_penalty']}"
    if decoding.get("no_repeat_ngram_size"):  # recorded since the option exists
        settings += f", no repeated {decoding['no_repeat_ngram_size']}-grams"
    return evaluation["metrics"], runtime, settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", action="append", default=[], help="LABEL=EVAL_DIR (repeatable).")
    parser.add_argument("--dataset_name", default=str(FLICKR8K), help="Flickr8k in the imagefolder layout.")
    parser.add_argument("--split", default="test")


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0], add_arguments)
    runs = []
    for value in args.run:
        label, separator, folder = value.partition("=")
        if not separator or not (Path(folder) / "metrics.json").is_file():
            raise SystemExit(f"--run {value!r}: expected LABEL=EVAL_DIR with EVAL_DIR/metrics.json")
        runs.append((label, Path(folder)))

    def cells(metrics: dict[str, float]) -> list[str]:  # ours: pycocoevalcap's 0-1 scale, shown x100
        return [f"{100 * metrics[name]:.1f}" for name in METRICS]

    rows = [[name, *(str(metrics.get(name, "")) for name in METRICS), "", ""] for name, metrics in PAPER_ROWS.items()]
    caption, metrics = frequent_caption_row(args.dataset_name, args.split)
    rows.append([f'most frequent training caption ("{caption}")', *cells(metrics), "0", ""])
    details = []
    for label, folder in runs:
        metrics, runtime, settings = run_row(folder)
        rows.append([f"ours: {label}", *cells(metrics), runtime, f"[{len(details) + 1}]"])
        details.append(f"[{len(details) + 1}] {label}: {settings}.")
    body = (
        f"Data: {args.dataset_name}, split {args.split}, all references of each image; scores x100 (pycocoevalcap; the "
        "paper's rows are its published figures).\n\n"
        + markdown_table(["model", *METRICS, "training wall time", "settings"], rows)
        + "\n\n"
        + "\n".join(details)
    )
    report(f"Flickr8k {args.split} against Xu et al. 2015, Table 1", body, args)


if __name__ == "__main__":
    main()
