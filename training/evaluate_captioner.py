"""Evaluate a saved Show-Attend-Tell model: COCO caption metrics and the attention grounding score on a dataset split.

```bash
python -m training.evaluate_captioner --model PATH_OR_HUB_ID --dataset_name ../shared/data/coco-mini --split test \
    --num_beams 3 --length_penalty 1.0 --max_new_tokens 30 --batch_size 16 --output_dir eval/coco-mini-test
```

Without `--dataset_name` it evaluates on the built-in shapes set (the default data of `training.train`). Writes
`predictions.json` (`[{"image_id", "caption"}]`), `metrics.json` and `metrics.md` to `--output_dir`.
`generate_captions()` is the batched inference helper that the training loop's validation also uses.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import torch
from tqdm.auto import tqdm
from transformers import AutoModel, AutoProcessor

from show_attend_tell import load_image
from show_attend_tell.grounding import pointing_game, summarize_pointing
from show_attend_tell.metrics import CAPTION_METRICS, compute_caption_metrics
from training.data import load_caption_dataset

BUILT_IN_DATASET = "built-in shapes"  # what reports call the data when --dataset_name is not given

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------------------------------
# Batched caption generation
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class GeneratedCaption:
    """A generated caption with its words and, per word, the attention over the encoder's region grid.

    `attention_maps` has shape `(len(words), num_regions)`; row `i` is the attention used to produce `words[i]`,
    regions in the encoder's row-major grid order (`grid` = `(height, width)`) over the whole photo.
    `image_size` is the photo's `(width, height)` in pixels.
    """

    caption: str
    words: list[str]
    attention_maps: torch.Tensor
    grid: tuple[int, int]
    image_size: tuple[int, int]


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _grid(num_regions: int) -> tuple[int, int]:
    side = math.isqrt(num_regions)
    if side * side != num_regions:
        raise ValueError(f"Expected a square region grid, got {num_regions} regions")
    return side, side


def _words_and_maps(sequence: torch.Tensor, maps: torch.Tensor, tokenizer) -> tuple[list[str], torch.Tensor]:
    """Words of one generated sequence (special tokens dropped, stop at eos) and their attention rows."""
    special = set(tokenizer.all_special_ids)
    words, rows = [], []
    for step, token_id in enumerate(sequence[1:].tolist()):  # sequences start with the decoder start token
        if token_id == tokenizer.eos_token_id:
            break
        if token_id in special:
            continue
        words.append(tokenizer.convert_ids_to_tokens(token_id))
        rows.append(step)
    return words, maps[rows].float().cpu()


def generate_captions(
    model,
    processor,
    images: Iterable[Any],
    *,
    batch_size: int = 16,
    progress: bool = True,
    **generate_kwargs,
) -> list[str] | list[GeneratedCaption]:
    """Caption `images` (PIL images, paths, bytes, arrays: anything `load_image` reads) in batches.

    Inference only: the model is put in eval mode and run on its own device and dtype. `generate_kwargs` go to
    `model.generate` (`num_beams`, `length_penalty`, `max_new_tokens`, ...).

    Returns one caption string per image, or, with `output_attentions=True`, one `GeneratedCaption` per image that
    also holds the words, their attention maps and the image size (for attention figures and the grounding score).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    if generate_kwargs.get("num_return_sequences", 1) != 1:
        raise ValueError("generate_captions returns one caption per image: num_return_sequences must be 1")
    output_attentions = bool(generate_kwargs.pop("output_attentions", False))
    generate_kwargs.pop("return_dict_in_generate", None)
    model.eval()
    total = len(images) if hasattr(images, "__len__") else None
    results: list = []
    with tqdm(total=total, desc="Captioning", unit="img", disable=not progress) as bar:
        for batch in _batches(images, batch_size):
            batch = [load_image(image) for image in batch]
            pixel_values = processor(images=batch)["pixel_values"].to(model.device, model.dtype)
            outputs = model.generate(
                pixel_values, output_attentions=output_attentions, return_dict_in_generate=True, **generate_kwargs
            )
            captions = processor.batch_decode(outputs.sequences)
            if not output_attentions:
                results.extend(captions)
            else:
                per_image = zip(batch, captions, outputs.sequences, outputs.attention_maps, strict=True)
                for image, caption, sequence, maps in per_image:
                    words, word_maps = _words_and_maps(sequence, maps, processor.tokenizer)
                    results.append(GeneratedCaption(caption, words, word_maps, _grid(word_maps.shape[-1]), image.size))
            bar.update(len(batch))
    return results


# --------------------------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------------------------


def load_eval_split(dataset_name: str | None, split: str, max_samples: int | None = None) -> datasets.Dataset:
    """`load_caption_dataset` (columns `image`, `captions`, `image_id`, and `objects` when the data has boxes),
    cut to its first `max_samples` rows."""
    dataset = load_caption_dataset(dataset_name, split)
    if max_samples is not None:
        dataset = dataset.select(range(min(max_samples, len(dataset))))
    if len(dataset) == 0:
        raise ValueError(f"Data set {dataset_name} split '{split}' has no examples")
    return dataset


def _annotated(row: dict) -> bool:
    """Whether a row has object boxes to score grounding on."""
    objects = row.get("objects")
    return bool(objects and objects.get("bbox"))


# --------------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------------


def evaluate_captioner(
    model,
    processor,
    dataset: datasets.Dataset,
    *,
    num_beams: int = 3,
    length_penalty: float = 1.0,
    max_new_tokens: int = 30,
    batch_size: int = 16,
    spice: bool = False,
    progress: bool = True,
) -> tuple[list[dict[str, str]], dict[str, float], dict | None]:
    """Generate captions for `dataset` and score them.

    Returns `(predictions, metrics, grounding)`: `[{"image_id", "caption"}]`, `compute_caption_metrics` output, and
    `summarize_pointing` output over the rows with object boxes (None when no row has boxes).
    """
    rows = dataset.remove_columns("image").to_list()
    with_boxes = any(_annotated(row) for row in rows)
    decoding = {"num_beams": num_beams, "max_new_tokens": max_new_tokens}
    if num_beams > 1:
        decoding["length_penalty"] = length_penalty
    generated = generate_captions(
        model,
        processor,
        dataset["image"],
        batch_size=batch_size,
        progress=progress,
        output_attentions=with_boxes,
        **decoding,
    )
    captions = [item.caption if isinstance(item, GeneratedCaption) else item for item in generated]
    ids = [row["image_id"] for row in rows]
    predictions = [{"image_id": image_id, "caption": caption} for image_id, caption in zip(ids, captions, strict=True)]
    metrics = compute_caption_metrics(
        dict(zip(ids, captions, strict=True)),
        {row["image_id"]: row["captions"] for row in rows},
        spice=spice,
    )
    grounding = None
    if with_boxes:
        pointed = []
        for row, item in zip(rows, generated, strict=True):
            if _annotated(row):
                pointed.extend(
                    pointing_game(item.words, item.attention_maps, item.image_size, row["objects"], item.grid)
                )
        grounding = summarize_pointing(pointed)
    return predictions, metrics, grounding


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def metrics_markdown(report: dict) -> str:
    """A markdown summary of a `metrics.json` report: caption metrics (x100) and the grounding table."""
    decoding = report["decoding"]
    names = [metric.name for metric in CAPTION_METRICS if metric.name in report["metrics"]]
    lines = [
        f"## Evaluation of `{report['model']}` on `{report['dataset']}` ({report['split']}, "
        f"{report['num_images']} images)",
        "",
        f"Decoding: beam size {decoding['num_beams']}, length penalty {decoding['length_penalty']}, "
        f"at most {decoding['max_new_tokens']} new tokens. Scores x100 (pycocoevalcap).",
        "",
        "| " + " | ".join(names) + " |",
        "|" + "---:|" * len(names),
        "| " + " | ".join(_percent(report["metrics"][name]) for name in names) + " |",
    ]
    grounding = report.get("grounding")
    if grounding is not None:
        lines += [
            "",
            "### Attention grounding (pointing game)",
            "",
            "Share of generated object words whose attention peak falls inside a box of that object, versus always "
            "pointing at the image centre (%).",
            "",
            "| Category | Words | Attention peak | Centre baseline |",
            "|---|---:|---:|---:|",
        ]
        rows = [("**overall**", grounding["overall"]), *grounding["per_category"].items()]
        for name, rates in rows:
            lines.append(
                f"| {name} | {rates['words']} | {_percent(rates['hit_rate'])} | {_percent(rates['center_baseline'])} |"
            )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="Saved model folder or Hub id.")
    parser.add_argument(
        "--dataset_name",
        default=None,
        help="Local folder (e.g. ../shared/data/coco-mini) or Hub id (default: the built-in shapes set of training).",
    )
    parser.add_argument("--split", default="test")
    parser.add_argument("--num_beams", type=int, default=3)
    parser.add_argument("--length_penalty", type=float, default=1.0)
    parser.add_argument("--max_new_tokens", type=int, default=30)
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
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        model = AutoModel.from_pretrained(args.model, trust_remote_code=True).to(device)
        processor = AutoProcessor.from_pretrained(args.model, trust_remote_code=True)
    except (OSError, ValueError) as error:
        raise SystemExit(f"Could not load a Show-Attend-Tell model from {args.model!r}: {error}") from None
    dataset = load_eval_split(args.dataset_name, args.split, args.max_samples)
    dataset_label = args.dataset_name or BUILT_IN_DATASET
    logger.info("Evaluating %s on %s (%s, %d images)", args.model, dataset_label, args.split, len(dataset))

    predictions, metrics, grounding = evaluate_captioner(
        model,
        processor,
        dataset,
        num_beams=args.num_beams,
        length_penalty=args.length_penalty,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        spice=args.spice,
        progress=not args.no_progress,
    )
    report = {
        "dataset": dataset_label,
        "split": args.split,
        "num_images": len(predictions),
        "decoding": {
            "num_beams": args.num_beams,
            "length_penalty": args.length_penalty,
            "max_new_tokens": args.max_new_tokens,
        },
        "metrics": metrics,
        "grounding": grounding,
        "model": args.model,
    }
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "predictions.json").write_text(json.dumps(predictions, indent=2) + "\n")
    (output_dir / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    (output_dir / "metrics.md").write_text(metrics_markdown(report))
    logger.info("Metrics: %s", {name: round(value, 4) for name, value in metrics.items()})
    logger.info("Wrote predictions.json, metrics.json and metrics.md to %s", output_dir)
    return report


if __name__ == "__main__":
    main()
