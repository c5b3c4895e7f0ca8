"""Soft against hard attention (Xu et al. 2015, sections 4.2 and 4.1), trained the same way and measured the same way.

    python -m benchmarks.compare_attention [--seeds 0 1 2] [--coco_seeds 0 1] [--quick] [--no-save]

For each attention type and seed, `training.train` trains a captioner with the same data, backbone, options, steps and
seeds (only `--attention_type` differs): the built-in shapes set with its default recipe, and coco-mini with the short
recipe of tests/training/test_train_coco_mini.py (frozen pretrained encoder, 256-wide decoder, 8 epochs). Each saved
model is then scored on its held-out test split with `show_attend_tell.evaluation.evaluate_captioner` (the grounding
benchmark, benchmarks/bench_grounding.py), decoding with its saved generation_config (beam search 3):

- caption metrics: BLEU-4 and CIDEr (pycocoevalcap);
- the pointing game: the share of object mentions whose attention peak falls in a box of that object, against always
  pointing at the image centre (shapes: the shape word of each "<colour> <shape>" mention; coco-mini: COCO object
  words);
- training time per step: the median wall time of one optimizer step (forward, loss, backward, AdamW) on a batch of
  cached features, both models timed alternately in this process (the machine's load affects both alike), and the
  whole run's wall time per step (data, feature cache, validation and saving included).

Means and standard deviations over seeds go to a markdown table (printed, appended to RESULTS.md unless --no-save), the
raw numbers to `OUTPUT/compare_attention.json`, and a figure of both models' attention on the same test image to
`docs/figures/attention_soft_vs_hard.png` (with --quick: beside the runs). Finished runs in OUTPUT are reused (delete
them to retrain).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import COCO_MINI, REPO_ROOT, median_time, parse_args, report
from show_attend_tell import (
    ShowAttendTellEncoderOutput,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    caption_images,
)
from show_attend_tell.evaluation import evaluate_captioner
from show_attend_tell.reporting import markdown_table, mean_spread
from show_attend_tell.visualization import overlay_attention
from training.evaluate_captioner import load_eval_split
from training.hard_attention import HardAttentionLoss

ATTENTION_TYPES = ("soft", "hard")
FIGURE = REPO_ROOT / "docs" / "figures" / "attention_soft_vs_hard.png"
# The data sets: training options (besides --attention_type, --seed, --output_dir) and the scorer of the pointing game.
DATASETS = {
    "shapes": {"train": [], "eval": None, "scorer": "shape word"},
    "coco-mini": {
        "train": [
            "--dataset_name", str(COCO_MINI),
            "--attention_dim", "256", "--embed_dim", "256", "--decoder_dim", "256",
            "--num_train_epochs", "8", "--learning_rate", "2e-3", "--num_warmup_steps", "20",
            "--min_word_frequency", "2",
        ],
        "eval": str(COCO_MINI),
        "scorer": "object word",
    },
}  # fmt: skip
# --quick: a few minutes in all, enough for captions that are not empty (the numbers mean nothing).
QUICK_TRAIN = ["--max_train_samples", "64", "--max_eval_samples", "8", "--num_train_epochs", "4", "--num_beams", "1"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="Seeds of the shapes runs.")
    parser.add_argument(
        "--coco_seeds", type=int, nargs="*", default=[0, 1], help="Seeds of the coco-mini runs (none: skip)."
    )
    parser.add_argument("--output", default="runs/compare-attention", help="Folder of the runs and the JSON results.")
    parser.add_argument("--train_args", nargs=argparse.REMAINDER, default=[], help="Extra training options (both).")


def train(folder: Path, attention_type: str, seed: int, options: list[str]) -> float:
    """Train one model with `python -m training.train` (reused when finished); returns wall seconds per step."""
    timing = folder / "wall_time.json"
    if not timing.is_file():
        command = [sys.executable, "-m", "training.train", "--attention_type", attention_type, "--seed", str(seed)]
        command += ["--output_dir", str(folder), "--overwrite_output_dir", *options]
        start = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
        steps = json.loads((folder / "val_metrics.json").read_text())["completed_steps"]
        timing.write_text(json.dumps({"seconds": time.perf_counter() - start, "steps": steps}) + "\n")
    values = json.loads(timing.read_text())
    return values["seconds"] / values["steps"]


def step_seconds(folders: dict[str, Path], repeats: int) -> dict[str, float]:
    """Median wall time of one optimizer step of each saved model on the same batch of 32 cached-feature captions."""

    class OneProcess:
        @staticmethod
        def reduce(tensor, reduction="sum"):
            return tensor

    steps = {}
    for attention_type, folder in folders.items():
        model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).train()
        processor = ShowAttendTellProcessor.from_pretrained(folder)
        generator = torch.Generator().manual_seed(0)
        features = torch.randn(32, model.config.num_regions, model.config.encoder_dim, generator=generator)
        words = "a red circle above a blue square and a green triangle"
        batch = {"features": features, "labels": processor.encode_captions([words] * 32)}
        inputs = {"encoder_outputs": ShowAttendTellEncoderOutput(last_hidden_state=features), "labels": batch["labels"]}
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
        hard_loss = HardAttentionLoss(OneProcess())

        def step(model=model, optimizer=optimizer, hard_loss=hard_loss, batch=batch, inputs=inputs):
            if model.config.attention_type == "hard":
                loss = hard_loss(model, batch, frozen_encoder=True)[0]
            else:
                loss = model(**inputs).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        steps[attention_type] = step
    times = {name: [] for name in steps}
    for step in steps.values():
        step()  # warm-up
    for _ in range(repeats):  # alternate, so that both see the same load
        for name, step in steps.items():
            times[name].append(median_time(step, repeats=1, warmup=0))
    return {name: statistics.median(values) for name, values in times.items()}


def evaluate(folder: Path, dataset) -> dict:
    model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
    processor = ShowAttendTellProcessor.from_pretrained(folder)
    return evaluate_captioner(model, processor, dataset).scores()


def summary_rows(name: str, results: dict, scorer: str) -> list[list[str]]:
    rows = []
    for attention_type in ATTENTION_TYPES:
        runs = results[attention_type]
        pointing = [run["report"]["pointing"][scorer]["overall"] for run in runs]
        cells = [
            name,
            attention_type,
            str(len(runs)),
            mean_spread([run["report"]["metrics"]["BLEU-4"] for run in runs], digits=3),
            mean_spread([run["report"]["metrics"]["CIDEr"] for run in runs], digits=3),
            mean_spread([entry["hit_rate"] for entry in pointing], scale=100),
            mean_spread([entry["center_baseline"] for entry in pointing], scale=100),
            f"{statistics.mean(entry['words'] for entry in pointing):.0f}",
            f"{1000 * results['step_seconds'][attention_type]:.1f}",
            f"{1000 * statistics.mean(run['wall_seconds_per_step'] for run in runs):.0f}",
        ]
        rows.append(cells)
    return rows


HEADERS = ["data", "attention", "seeds", "BLEU-4", "CIDEr", "pointing hit %", "centre %", "mentions", "ms/step",
           "run ms/step"]  # fmt: skip


def attention_figure(folders: dict[str, Path], image, path: Path) -> str:
    """Both models' captions of `image`, one row of word panels per model (the photo lit by each word's attention)."""
    captions = {}
    for attention_type, folder in folders.items():
        model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
        captions[attention_type] = caption_images(model, ShowAttendTellProcessor.from_pretrained(folder), [image])[0]
    columns = max(len(caption.words) for caption in captions.values())
    panel = 1.1
    figure = Figure(figsize=(columns * panel, len(captions) * (panel + 0.45)), dpi=80)
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(len(captions), columns, left=0.01, right=0.99, bottom=0.01, top=0.9, hspace=0.5)
    for row, (attention_type, caption) in enumerate(captions.items()):
        for column, (word, attention) in enumerate(zip(caption.words, caption.attention, strict=True)):
            axes = figure.add_subplot(grid[row, column])
            axes.imshow(overlay_attention(caption.image.resize((96, 96)), attention), interpolation="bilinear")
            axes.set_title(f"{attention_type}: {word}" if column == 0 else word, fontsize=8)
            axes.set_axis_off()
    figure.suptitle("soft (top) and hard (bottom) attention, same test image", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format="png", dpi=80)
    return " / ".join(f"{name}: {caption.text!r}" for name, caption in captions.items())


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0], add_arguments)
    output = Path(args.output) / ("quick" if args.quick else "full")
    seeds = {"shapes": args.seeds[:1] if args.quick else args.seeds, "coco-mini": args.coco_seeds}
    repeats = args.repeats or (3 if args.quick else 15)
    results, lines = {}, []
    for name, spec in DATASETS.items():
        if not seeds[name]:
            continue
        options = [*spec["train"], *(QUICK_TRAIN if args.quick else []), *args.train_args]
        dataset = load_eval_split(spec["eval"], "test", 20 if args.quick else None)
        results[name] = {attention_type: [] for attention_type in ATTENTION_TYPES}
        for seed in seeds[name]:
            for attention_type in ATTENTION_TYPES:
                folder = output / f"{name}-{attention_type}-seed{seed}"
                wall = train(folder, attention_type, seed, options)
                report_ = evaluate(folder, dataset)
                results[name][attention_type].append(
                    {"seed": seed, "folder": str(folder), "wall_seconds_per_step": wall, "report": report_}
                )
                print(name, attention_type, seed, report_["metrics"]["CIDEr"], report_["pointing"], flush=True)
        first = {
            attention_type: output / f"{name}-{attention_type}-seed{seeds[name][0]}"
            for attention_type in ATTENTION_TYPES
        }
        results[name]["step_seconds"] = step_seconds(first, repeats)
        lines += summary_rows(name, results[name], spec["scorer"])
        if name == "shapes":  # --quick keeps its figure beside its runs, away from the published one
            figure_file = output / FIGURE.name if args.quick else FIGURE
            figure_path = figure_file if args.quick else FIGURE.relative_to(REPO_ROOT)
            results[name]["figure"] = attention_figure(first, dataset[0]["image"], figure_file)
    (output / "compare_attention.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    table = markdown_table(HEADERS, lines)
    extra = f", extra training options {' '.join(args.train_args)}" if args.train_args else ""
    body = (
        f"`python -m benchmarks.compare_attention{' --quick' if args.quick else ''}` (shapes seeds {seeds['shapes']}, "
        f"coco-mini seeds {seeds['coco-mini']}{extra}). "
        "Mean ± standard deviation over seeds; each model decodes its test split with its saved generation_config "
        "(beam search 3). Pointing game: shapes scores the shape word of each '<colour> <shape>' mention, coco-mini "
        "COCO object words; 'centre' always points at the image centre; 'mentions': scored words per run. ms/step: "
        "median optimizer step on 32 cached-feature captions, both models alternately in one process; run ms/step: "
        "the whole training run's wall time per step (feature cache, validation, saving included).\n\n"
        + table
        + (f"\n\nFigure: `{figure_path}` ({results['shapes']['figure']})" if "shapes" in results else "")
    )
    report("Soft vs hard attention", body, args)


if __name__ == "__main__":
    main()
