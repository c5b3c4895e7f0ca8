"""Grounding benchmark: does a trained captioner's attention look where its words are, and at what caption quality?

    python -m benchmarks.bench_grounding --model RUN [--model RUN2 ...] [--dataset_name ../shared/data/coco-mini] \
        [--split test [validation train]] [--boxed_only] [--max_samples N] [--no-save]

For each saved model folder, on a data set split (or several, concatenated) with object boxes (default: the built-in
shapes set's held-out test scenes; coco-mini test has COCO boxes), `show_attend_tell.evaluation.evaluate_captioner`
captions every image with the model's saved decoding and reports, side by side:

- caption quality: CIDEr and BLEU-4 (pycocoevalcap) and the share of captions equal to a reference ("exact");
- the pointing game: the share of scored mentions whose attention peak lies in a box of the named object, against
  always pointing at the image centre and against a uniformly random grid cell. On coco-mini the mentions are COCO
  object words, scored at the word's own map, at the map of the step before it (the step that chose the object) and
  at the two summed (the phrase); on the shapes set the shape word of each "<colour> <shape>" naming a scene object,
  and the phrase (both words' maps summed);
- focus: the mean per-word attention entropy as a share of a uniform map's (log of the number of regions), and the
  mean peak weight beside a uniform map's (1 / regions).

The table is printed and appended to RESULTS.md (unless --no-save).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import datasets
from transformers import AutoModel, AutoProcessor

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import parse_args, report
from show_attend_tell.evaluation import evaluate_captioner
from show_attend_tell.reporting import grounding_table
from training.evaluate_captioner import BUILT_IN_DATASET, load_eval_split


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", action="append", required=True, help="Saved model folder (repeatable).")
    parser.add_argument("--name", action="append", default=None, help="Row name per --model (default: the folder).")
    parser.add_argument("--dataset_name", default=None, help="Local folder or Hub id (default: built-in shapes).")
    parser.add_argument("--split", nargs="+", default=["test"], help="Split(s); several are concatenated.")
    parser.add_argument("--boxed_only", action="store_true", help="Only the images that have object boxes.")
    parser.add_argument("--max_samples", type=int, default=None, help="Only the first N images (--quick: 20).")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--json", default=None, help="Also write the reports to this JSON file.")


def run(args: argparse.Namespace) -> dict[str, dict]:
    names = args.name or [Path(model).name for model in args.model]
    if len(names) != len(args.model):
        raise SystemExit(f"--name given {len(names)} times for {len(args.model)} --model folders")
    max_samples = args.max_samples or (20 if args.quick else None)
    dataset = datasets.concatenate_datasets([load_eval_split(args.dataset_name, split) for split in args.split])
    if args.boxed_only:
        dataset = dataset.filter(lambda objects: bool(objects and objects["bbox"]), input_columns="objects")
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    reports = {}
    for name, folder in zip(names, args.model, strict=True):
        model = AutoModel.from_pretrained(folder, trust_remote_code=True)
        processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
        reports[name] = evaluate_captioner(model, processor, dataset, batch_size=args.batch_size).scores()
    return reports


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0], add_arguments)
    reports = run(args)
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")
    dataset = args.dataset_name or BUILT_IN_DATASET
    splits = "+".join(args.split) + (" (images with boxes)" if args.boxed_only else "")
    body = (
        f"Data: {dataset}, split {splits}; decoding: each model's generation_config. Rates in %; 'centre' always "
        "points at the image centre, 'random' is the expected hit of a uniformly random grid cell; entropy is the mean "
        "per-word attention entropy as % of a uniform map's; peak is the mean largest weight (uniform's).\n\n"
        + grounding_table(reports)
    )
    report(f"Grounding ({dataset}, {'+'.join(args.split)})", body, args)


if __name__ == "__main__":
    main()
