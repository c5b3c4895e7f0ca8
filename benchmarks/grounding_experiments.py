"""What makes attention focus: train variants with the same data, steps and seeds, and score each with the grounding
benchmark (`show_attend_tell.evaluation.evaluate_captioner`).

    python -m benchmarks.grounding_experiments --output_root runs/grounding [--variants baseline position ...] \
        [--seeds 42 1 2] [--dataset_name ../shared/data/coco-mini] [--quick] [--no-save]

Each run is `python -m training.train --output_dir ROOT/VARIANT-sSEED --seed SEED FLAGS` (the README's default command
plus the variant's flags), one at a time with one thread, seeds in the outer loop so that an interrupted sweep has
as many seeds of every variant. A folder that already holds a finished run and its `grounding.json` is reused, so
the script can be rerun to extend a sweep. On the built-in shapes set the runs are scored on the 100 held-out test
scenes, on a real data set on its test split. The table (mean and spread over seeds) is printed and appended to
RESULTS.md. `--quick`: 40 training steps, one seed, 20 test images (a smoke test of the whole sweep, minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from transformers import AutoModel, AutoProcessor

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import REPO_ROOT, parse_args, report
from show_attend_tell.evaluation import evaluate_captioner
from show_attend_tell.reporting import markdown_table, mean_spread
from training.evaluate_captioner import BUILT_IN_DATASET, load_eval_split

# Variant name -> training flags added to the default command (soft attention only).
VARIANTS: dict[str, list[str]] = {
    "baseline": [],
    "position": ["--position_embedding", "learned"],
    "position-sinusoidal": ["--position_embedding", "sinusoidal"],
    "grid-stride16": ["--feature_index", "-2"],
    "temperature-0.5": ["--attention_temperature", "0.5"],
    "temperature-0.25": ["--attention_temperature", "0.25"],
    "alpha_c-0": ["--alpha_c", "0"],
    "alpha_c-5": ["--alpha_c", "5"],
    "entropy-0.1": ["--attention_entropy_weight", "0.1"],
    "entropy-0.5": ["--attention_entropy_weight", "0.5"],
    "fine-tune-2-blocks": ["--fine_tune_encoder_after", "0", "--fine_tune_encoder_blocks", "2"],
    "position+stride16": ["--position_embedding", "learned", "--feature_index", "-2"],
}
DEFAULT_VARIANTS = ["baseline", "position", "grid-stride16", "temperature-0.5"]
QUICK_TRAIN_FLAGS = ["--max_train_steps", "40", "--num_warmup_steps", "0"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output_root", required=True, help="One folder per run: ROOT/VARIANT-sSEED.")
    parser.add_argument("--variants", nargs="+", default=DEFAULT_VARIANTS, choices=sorted(VARIANTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="Default: 42 1 2 (--quick: 42).")
    parser.add_argument("--dataset_name", default=None, help="Default: the built-in shapes set.")
    parser.add_argument("--split", default="test", help="Split scored by the benchmark.")
    parser.add_argument("--train_args", nargs=argparse.REMAINDER, default=[], help="Flags added to every run.")


def train(output_dir: Path, seed: int, flags: list[str]) -> float:
    """Run the training command (one thread, offline) and return its wall-clock seconds."""
    command = [sys.executable, "-m", "training.train", "--output_dir", str(output_dir), "--seed", str(seed), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    start = time.perf_counter()
    log = output_dir.parent / f"{output_dir.name}.log"
    with log.open("w") as stream:
        result = subprocess.run(command, cwd=REPO_ROOT, env=env, stdout=stream, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        raise SystemExit(f"training failed ({' '.join(command)}); see {log}")
    return time.perf_counter() - start


def run_one(args: argparse.Namespace, variant: str, seed: int, dataset) -> dict:
    output_dir = Path(args.output_root) / f"{variant}-s{seed}"
    scored = output_dir / "grounding.json"
    if scored.is_file():
        return json.loads(scored.read_text())
    flags = [*VARIANTS[variant], *args.train_args, *(QUICK_TRAIN_FLAGS if args.quick else [])]
    if args.dataset_name:
        flags = ["--dataset_name", args.dataset_name, *flags]
    seconds = None
    if not (output_dir / "model.safetensors").is_file():
        output_dir.parent.mkdir(parents=True, exist_ok=True)
        seconds = train(output_dir, seed, flags)
    model = AutoModel.from_pretrained(output_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(output_dir, trust_remote_code=True)
    result = {"variant": variant, "seed": seed, "flags": flags, "train_seconds": seconds}
    result["report"] = evaluate_captioner(model, processor, dataset).scores()
    scored.write_text(json.dumps(result, indent=2) + "\n")
    return result


def variant_row(variant: str, results: list[dict]) -> list[str]:
    reports = [result["report"] for result in results]

    def pointing(scorer: str, key: str) -> list[float | None]:
        return [(r["pointing"].get(scorer) or {}).get("overall", {}).get(key) for r in reports]

    first_scorer = next(iter(reports[0]["pointing"]), None)
    phrase = "colour+shape phrase" if "colour+shape phrase" in reports[0]["pointing"] else None
    times = [result["train_seconds"] for result in results]
    return [
        variant,
        " ".join(str(result["seed"]) for result in results),
        mean_spread(pointing(first_scorer, "hit_rate"), 100),
        mean_spread(pointing(first_scorer, "random_baseline"), 100),
        mean_spread(pointing(first_scorer, "center_baseline"), 100),
        mean_spread(pointing(phrase, "hit_rate"), 100) if phrase else "-",
        mean_spread([r["attention"]["entropy_ratio"] for r in reports], 100),
        mean_spread([r["attention"]["peak"] for r in reports], 1, 3),
        mean_spread([r["exact"] for r in reports], 100),
        mean_spread([r["metrics"]["CIDEr"] for r in reports], 1, 3),
        mean_spread(times, 1, 0) if any(t is not None for t in times) else "reused",
    ]


HEADERS = ["variant", "seeds", "word hit %", "random cell %", "centre %", "phrase hit %", "entropy % of uniform",
           "peak weight", "exact %", "CIDEr", "train s"]  # fmt: skip


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0], add_arguments)
    seeds = args.seeds or ([42] if args.quick else [42, 1, 2])
    dataset = load_eval_split(args.dataset_name, args.split, 20 if args.quick else None)
    results: dict[str, list[dict]] = {variant: [] for variant in args.variants}
    for seed in seeds:
        for variant in args.variants:
            result = run_one(args, variant, seed, dataset)
            results[variant].append(result)
            print(variant, seed, json.dumps(variant_row(variant, [result])), flush=True)
    table = markdown_table(HEADERS, [variant_row(variant, runs) for variant, runs in results.items()])
    dataset_label = args.dataset_name or BUILT_IN_DATASET
    extra = " + " + " ".join(args.train_args) if args.train_args else ""
    extra += " (--quick: 40 steps)" if args.quick else ""
    body = (
        f"Training: `python -m training.train --output_dir DIR --seed SEED` + the variant's flags{extra}; "
        f"scored on {dataset_label} {args.split} ({len(dataset)} images) with each model's saved decoding. Mean ± "
        "standard deviation over seeds. 'word hit': the pointing game of the shape word (COCO object words on real "
        "photos) against a uniformly random grid cell and the image centre; 'phrase hit': colour + shape maps summed; "
        "entropy: mean per-word attention entropy as % of a uniform map's; train s: seconds per training run.\n\n"
        + table
    )
    report(f"Grounding experiments ({dataset_label})", body, args)


if __name__ == "__main__":
    main()
