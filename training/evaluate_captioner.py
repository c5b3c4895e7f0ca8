"""Evaluate a saved Show-Attend-Tell model: COCO caption metrics and the attention grounding score on a dataset split.

```bash
python -m training.evaluate_captioner --model PATH_OR_HUB_ID --dataset_name ../shared/data/coco-mini --split test \
    --batch_size 16 --output_dir eval/coco-mini-test
```

Without `--dataset_name` it evaluates on the built-in shapes set (the default data of `training.train`). Decoding
follows the model's saved `generation_config.json`; `--num_beams`, `--length_penalty`, `--max_new_tokens` and
`--no_repeat_ngram_size` override it when given. Writes `predictions.json` (`[{"image_id", "caption"}]`),
`metrics.json` (with the decoding used) and `metrics.md` to `--output_dir`. The scores come from the library's
`show_attend_tell.evaluation.evaluate_captioner` (captions from `caption_images`, like every other entry point), the
page from `show_attend_tell.reporting`.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import datasets
import torch

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from show_attend_tell import ModelFolderError, load_captioner
from show_attend_tell.evaluation import evaluate_captioner
from show_attend_tell.reporting import metrics_markdown
from training.data import load_caption_dataset

BUILT_IN_DATASET = "built-in shapes"  # what reports call the data when --dataset_name is not given

logger = logging.getLogger(__name__)


def load_eval_split(dataset_name: str | None, split: str, max_samples: int | None = None) -> datasets.Dataset:
    """`load_caption_dataset` (columns `image`, `captions`, `image_id`, and `objects` when the data has boxes),
    cut to its first `max_samples` rows."""
    dataset = load_caption_dataset(dataset_name, split)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    if len(dataset) == 0:
        raise ValueError(f"Data set {dataset_name} split '{split}' has no examples")
    return dataset


# Decoding flags that override the saved generation_config.json when given.
DECODING_OPTIONS = ("num_beams", "length_penalty", "max_new_tokens", "no_repeat_ngram_size")


def effective_decoding(model, decoding: dict[str, Any]) -> dict[str, Any]:
    """The decoding settings a run used: the given ones, and the model's `generation_config` for the rest."""
    used = {name: getattr(model.generation_config, name) if decoding.get(name) is None else decoding[name]
            for name in DECODING_OPTIONS}  # fmt: skip
    return used | {"no_repeat_ngram_size": used["no_repeat_ngram_size"] or 0}  # transformers' default is None: off


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Saved model folder or Hub id.")
    parser.add_argument(
        "--dataset_name",
        default=None,
        help="Local folder (e.g. ../shared/data/coco-mini) or Hub id (default: the built-in shapes set of training).",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--num_beams", type=int, default=None, help="Default: the model's generation_config.json.")
    parser.add_argument("--length_penalty", type=float, default=None, help="Default: the model's generation_config.")
    parser.add_argument(
        "--no_repeat_ngram_size", type=int, default=None, help="0: off. Default: the model's generation_config."
    )
    parser.add_argument("--max_new_tokens", type=int, default=None, help="Default: the model's generation_config.")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_samples", type=int, default=None, help="Evaluate only the first N images.")
    parser.add_argument("--spice", action="store_true", help="Also compute SPICE (skipped with a warning offline).")
    parser.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda when available).")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--no_progress", action="store_true", help="Hide the progress bar.")
    args = parser.parse_args(argv)
    for name in ("num_beams", "max_new_tokens", "batch_size", "max_samples"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    if args.no_repeat_ngram_size is not None and args.no_repeat_ngram_size < 0:
        parser.error(f"--no_repeat_ngram_size must be 0 (off) or more, got {args.no_repeat_ngram_size}")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model, processor = load_captioner(args.model, device, label=f"--model {args.model}")
    except ModelFolderError as error:  # one line, as `show-attend-tell caption` says it
        raise SystemExit(str(error)) from None
    dataset = load_eval_split(args.dataset_name, args.split, args.max_samples)
    dataset_label = args.dataset_name or BUILT_IN_DATASET
    logger.info("Evaluating %s on %s (%s, %d images)", args.model, dataset_label, args.split, len(dataset))

    decoding = effective_decoding(
        model,
        {name: getattr(args, name) for name in DECODING_OPTIONS},
    )
    evaluation = evaluate_captioner(
        model,
        processor,
        dataset,
        batch_size=args.batch_size,
        spice=args.spice,
        progress=not args.no_progress,
        **decoding,
    )
    report = {
        "dataset": dataset_label,
        "split": args.split,
        "num_images": evaluation.num_images,
        "decoding": decoding,
        "metrics": evaluation.metrics,
        "grounding": evaluation.grounding,
        "model": args.model,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "predictions.json").write_text(json.dumps(evaluation.predictions, indent=2) + "\n")
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "metrics.md").write_text(metrics_markdown(report))
    logger.info("Metrics: %s", {name: round(value, 4) for name, value in evaluation.metrics.items()})
    logger.info("Wrote predictions.json, metrics.json and metrics.md to %s", output_dir)
    return report


if __name__ == "__main__":
    main()
