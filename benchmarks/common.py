"""Shared helpers of the benchmark scripts: model sizes, inputs, timing, FLOP counting and RESULTS.md (tables and
sections come from `show_attend_tell.reporting`).

The benchmarks compare our fast paths with `baseline.py` (the classic tutorial algorithms) on the same weights, in
the same process, so that ratios hold even on a busy machine; absolute figures depend on the load (reported).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from show_attend_tell import (
    ShowAttendTellConfig,
    ShowAttendTellEncoderOutput,
    ShowAttendTellForConditionalGeneration,
    build_tokenizer,
)
from show_attend_tell.reporting import results_section

BENCHMARKS_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCHMARKS_DIR.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco-mini"
RESULTS_FILE = BENCHMARKS_DIR / "RESULTS.md"

TUTORIAL_VOCAB_SIZE = 9490  # the popular tutorial's COCO word map (words seen >= 5 times)
# A randomly initialised model gives near-uniform word probabilities and either never says `eos` or says it at once.
# `build_model` makes it behave more like a trained captioner, so that both sides decode captions of realistic
# lengths (each run reports the mean): output scores scaled up (peaked, image-dependent word choices), and one LSTM
# unit that counts steps and raises the `eos` score by about two logits per word, so captions end after 9-17 tokens
# (mean about 12, i.e. ~11 words like trained COCO captioners), at an image-dependent step.
LOGIT_SCALE = 10.0
EOS_LOGIT_SCALE = 2.0
EOS_BIAS = -15.0
EOS_LOGITS_PER_STEP = 2.0
LENGTH_UNIT_RATE = 0.05  # the counting unit's cell state grows by this much per step


@dataclass(frozen=True)
class Size:
    """A model size: the region grid and feature width the decoder attends to."""

    name: str
    backbone: str
    image_size: int
    num_regions: int
    encoder_dim: int


SIZES = {
    # The tutorial's COCO model: ResNet-101 features pooled to 14x14 = 196 regions of 2048 channels.
    "tutorial": Size("tutorial", backbone="resnet50", image_size=448, num_regions=196, encoder_dim=2048),
    # Our default backbone: tf_efficientnet_lite0 at 256 px, an 8x8 grid of 320 channels.
    "default": Size("default", backbone="tf_efficientnet_lite0", image_size=256, num_regions=64, encoder_dim=320),
}


def parse_args(description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="Reduced sizes and repeats (about a minute).")
    parser.add_argument("--repeats", type=int, default=None, help="Timed repeats per measurement (median reported).")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice).")
    parser.add_argument(
        "--no-save", action="store_true", help=f"Print the table only; do not append to {RESULTS_FILE}."
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    return args


def build_model(size: Size, seed: int = 0, vocab_size: int = TUTORIAL_VOCAB_SIZE, **overrides):
    """A randomly initialised model of `size` that writes captions of realistic lengths (see `plant_length_unit`)."""
    config = ShowAttendTellConfig(
        backbone=size.backbone, image_size=size.image_size, vocab_size=vocab_size, **overrides
    )
    torch.manual_seed(seed)
    model = ShowAttendTellForConditionalGeneration(config).eval()
    if model.config.encoder_dim != size.encoder_dim:
        raise ValueError(
            f"size {size.name!r} expects {size.encoder_dim} channels, {size.backbone} has {config.encoder_dim}"
        )
    with torch.no_grad():
        plant_length_unit(model)
    return model


def plant_length_unit(model: ShowAttendTellForConditionalGeneration, unit: int = 0) -> None:
    """Scale the output scores and wire LSTM unit `unit` as a step counter that feeds the `eos` score (see above)."""
    config, lstm = model.config, model.lstm
    hidden, eos = config.decoder_dim, config.eos_token_id
    for gate in range(4):  # PyTorch's gate order: input, forget, cell, output
        row = gate * hidden + unit
        lstm.weight_ih[row] = 0
        lstm.weight_hh[row] = 0
        lstm.bias_hh[row] = 0
        lstm.bias_ih[row] = 12.0  # forget ~1, cell input tanh ~1, output ~1
    lstm.bias_ih[unit] = torch.logit(torch.tensor(LENGTH_UNIT_RATE))  # input gate: c_t ~ rate * t, h_t = tanh(c_t)
    for layer in (model.init_hidden, model.init_cell):  # the count starts at 0
        layer.weight[unit] = 0
        layer.bias[unit] = 0
    # Deep-output feature `unit` carries the count alone; only the `eos` score reads it.
    model.output_hidden.weight[unit] = 0
    model.output_hidden.weight[unit, unit] = 1.0
    model.output_hidden.bias[unit] = 0
    model.output_context.weight[unit] = 0
    model.output_context.bias[unit] = 0
    model.embed_tokens.weight[:, unit] = 0
    model.lm_head.weight[:, unit] = 0
    model.lm_head.weight.mul_(LOGIT_SCALE)
    model.lm_head.weight[eos].mul_(EOS_LOGIT_SCALE)
    model.lm_head.weight[eos, unit] = EOS_LOGITS_PER_STEP / LENGTH_UNIT_RATE
    model.lm_head.bias[eos] = EOS_BIAS


def random_regions(size: Size, batch_size: int, seed: int = 0) -> torch.Tensor:
    """Non-negative region features (like post-ReLU CNN features) that differ from image to image."""
    generator = torch.Generator().manual_seed(seed)
    per_image = torch.randn(batch_size, 1, size.encoder_dim, generator=generator)
    return torch.relu(per_image + torch.randn(batch_size, size.num_regions, size.encoder_dim, generator=generator))


def random_pixels(size: Size, batch_size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch_size, 3, size.image_size, size.image_size, generator=generator)


def encoder_outputs_for(
    model: ShowAttendTellForConditionalGeneration, regions: torch.Tensor
) -> ShowAttendTellEncoderOutput:
    """Region features with the attention projection computed once, as `model.encoder(pixel_values)` returns them."""
    with torch.inference_mode():
        projected = model.encoder.region_projection(regions)
    return ShowAttendTellEncoderOutput(last_hidden_state=regions, projected_regions=projected)


def coco_caption_lengths() -> list[int]:
    """Label lengths (words + eos, with the package tokenizer) of coco-mini train captions; a fixed list if absent."""
    metadata = COCO_MINI / "train" / "metadata.jsonl"
    if not metadata.is_file():
        return [9, 10, 11, 11, 12, 12, 12, 13, 13, 14, 15, 17]
    import json

    captions = [c for line in metadata.read_text().splitlines() if line.strip() for c in json.loads(line)["captions"]]
    tokenizer = build_tokenizer(captions)
    return [len(ids) for ids in tokenizer(captions)["input_ids"]]


def random_labels(batch_size: int, vocab_size: int, lengths: list[int], seed: int = 0) -> torch.LongTensor:
    """Labels like the processor's: random words, `eos` last, -100 padding; lengths drawn from `lengths`."""
    generator = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(lengths), (batch_size,), generator=generator)
    batch_lengths = [lengths[int(i)] for i in picks]
    labels = torch.full((batch_size, max(batch_lengths)), -100, dtype=torch.long)
    for row, length in enumerate(batch_lengths):
        labels[row, : length - 1] = torch.randint(4, vocab_size, (length - 1,), generator=generator)
        labels[row, length - 1] = 2  # eos
    return labels


def median_time(fn: Callable[[], object], repeats: int, warmup: int = 1) -> float:
    """Median wall-clock seconds of `fn()` over `repeats` runs after `warmup` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of the matrix products and convolutions `fn()` runs (torch's FlopCounterMode)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Measured fp32 GFLOP/s of a large square matrix product: the practical peak of this machine."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / median_time(lambda: a @ b, repeats, warmup=2) / 1e9


def report(title: str, body: str, args: argparse.Namespace) -> None:
    """Print `body` under `title` and the machine line, and append it to RESULTS.md unless `--no-save`."""
    section = results_section(title, body, args.quick)
    print(section)
    if not args.no_save:
        if not RESULTS_FILE.exists():
            RESULTS_FILE.write_text(
                "# Benchmark results\n\nAppended by the scripts in this folder (newest last). Ratios compare our fast "
                "paths with `baseline.py` (the classic tutorial algorithms, same weights) measured in the same run.\n"
            )
        with RESULTS_FILE.open("a") as results:
            results.write("\n" + section)
