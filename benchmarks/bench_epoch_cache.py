"""Frozen-encoder training epoch: the feature cache against recomputing the CNN for every batch.

    python -m benchmarks.bench_epoch_cache [--quick]

One epoch over `../shared/data/coco-mini` train (every (image, caption) pair once, batch 32) with the training
script's own pieces: `load_caption_dataset`, `CaptionPairs`, `CaptionCollator`, `model_loss` and
`build_feature_cache`; our default model (tf_efficientnet_lite0 at 256 px with its ImageNet weights, frozen), AdamW.
Without the cache every batch decodes, resizes and encodes its images (each image once per caption); with it, batches
read the stored region features. Building the cache (once per data set and backbone) is timed separately. Also times
the CNN alone with NCHW and channels_last inputs.
"""

from __future__ import annotations

import tempfile
import time

import torch
from torch.utils.data import DataLoader

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import COCO_MINI, median_time, parse_args, report
from show_attend_tell import (
    ShowAttendTellConfig,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
)
from show_attend_tell.backbones import load_pretrained_backbone
from show_attend_tell.reporting import markdown_table
from training.collate import CaptionCollator, CaptionPairs
from training.data import load_caption_dataset
from training.feature_cache import FeatureCache, build_feature_cache
from training.validation import model_loss


def build_default_model(captions: list[str]) -> tuple[ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor]:
    tokenizer = build_tokenizer(captions)
    config = ShowAttendTellConfig(vocab_size=len(tokenizer))
    processor = ShowAttendTellProcessor(build_image_processor(config.backbone, config.image_size), tokenizer)
    torch.manual_seed(0)
    model = ShowAttendTellForConditionalGeneration(config)
    load_pretrained_backbone(model.encoder.backbone, config.backbone)
    model.freeze_encoder(trainable_blocks=0)
    return model, processor


def run_epoch(model, processor, dataset, features: FeatureCache | None, batch_size: int) -> tuple[float, int]:
    """Seconds for one training epoch (data loading included) and the number of (image, caption) pairs."""
    collator = CaptionCollator(processor, images=dataset.select_columns(["image"]), features=features)
    pairs = CaptionPairs(dataset["captions"])
    loader = DataLoader(
        pairs, batch_size=batch_size, shuffle=True, collate_fn=collator, generator=torch.Generator().manual_seed(0)
    )
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    model.train()
    start = time.perf_counter()
    for batch in loader:
        loss = model_loss(model, batch, frozen_encoder=True)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start, len(pairs)


def cnn_memory_formats(model, processor, dataset, batch_size: int, repeats: int) -> list:
    """The CNN alone: NCHW input (PyTorch's default) against the package's channels_last input, and with the weights
    also stored channels_last."""
    images = list(dataset.select(range(min(batch_size, len(dataset))))["image"])
    pixel_values = processor(images=images)["pixel_values"]
    encoder = model.encoder.eval()
    rows = []
    with torch.inference_mode():
        nchw = median_time(lambda: encoder.backbone(pixel_values)[-1].flatten(2).transpose(1, 2).contiguous(), repeats)
        package = median_time(lambda: encoder.backbone_features(pixel_values), repeats)
        encoder.backbone.to(memory_format=torch.channels_last)
        weights_too = median_time(lambda: encoder.backbone_features(pixel_values), repeats)
        encoder.backbone.to(memory_format=torch.contiguous_format)
    rows.append(["NCHW input (PyTorch's default)", len(images) / nchw, "1.0x"])
    rows.append(["channels_last input (`backbone_features`)", len(images) / package, f"{nchw / package:.2f}x"])
    rows.append(["channels_last input and weights", len(images) / weights_too, f"{nchw / weights_too:.2f}x"])
    return rows


def add_arguments(parser) -> None:
    parser.add_argument("--max-images", type=int, default=None, help="Use the first N train images (quick: 64).")
    parser.add_argument("--batch-size", type=int, default=32)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    if not (COCO_MINI / "train" / "metadata.jsonl").is_file():
        raise SystemExit(f"coco-mini not found at {COCO_MINI} (clone the repo with ../shared beside it)")
    dataset = load_caption_dataset(str(COCO_MINI), "train")
    max_images = args.max_images or (64 if args.quick else None)
    if max_images is not None:
        dataset = dataset.select(range(min(max_images, len(dataset))))
    repeats = args.repeats or 1  # one epoch is already an average over all its batches
    model, processor = build_default_model([c for captions in dataset["captions"] for c in captions])

    with tempfile.TemporaryDirectory() as cache_root:
        start = time.perf_counter()
        cache = build_feature_cache(
            model, processor, dataset, cache_root, dataset_fingerprint=dataset._fingerprint, progress=False
        )
        build_seconds = time.perf_counter() - start
        cached = sorted(run_epoch(model, processor, dataset, cache, args.batch_size)[0] for _ in range(repeats))
        direct_runs = [run_epoch(model, processor, dataset, None, args.batch_size) for _ in range(repeats)]
    cached_seconds = cached[len(cached) // 2]
    direct_seconds, num_pairs = sorted(direct_runs)[len(direct_runs) // 2]
    rows = [
        ["recompute the CNN every batch", direct_seconds, num_pairs / direct_seconds, "1.0x"],
        ["feature cache", cached_seconds, num_pairs / cached_seconds, f"**{direct_seconds / cached_seconds:.1f}x**"],
        ["building the cache (once)", build_seconds, len(dataset) / build_seconds, "(images/s)"],
        [
            "first epoch: build + cached epoch",
            build_seconds + cached_seconds,
            num_pairs / (build_seconds + cached_seconds),
            f"{direct_seconds / (build_seconds + cached_seconds):.1f}x",
        ],
    ]
    body = markdown_table(["epoch", "seconds", "pairs/s", "speed-up (target 5x)"], rows)
    body += (
        f"\n\n{len(dataset)} images, {num_pairs} (image, caption) pairs, batch {args.batch_size}; median of "
        f"{repeats} epochs each.\n\n"
        + markdown_table(
            ["CNN alone (inference, batch 32)", "images/s", "vs NCHW"],
            cnn_memory_formats(model, processor, dataset, args.batch_size, max(repeats, 3)),
        )
    )
    report("Frozen-encoder epoch: feature cache vs recomputing the CNN", body, args)


if __name__ == "__main__":
    main()
