"""Training speed: our teacher-forced step against the tutorial's per-timestep shrinking-batch step, same weights.

    python -m benchmarks.bench_train_step [--quick]

Captions per second of one optimiser step (forward, loss, backward, Adam) of the decoder on precomputed region
features (a frozen encoder, as with the feature cache), at batch 32 and 80, at the tutorial's COCO size and at our
default backbone's size. Caption lengths follow coco-mini's train captions. Ours: the LSTM loop over a packed batch
(captions leave it when they end), the attention projection once per image, the output layer once over all steps.
Baseline: a length-sorted batch that shrinks as captions end, the projection recomputed at every step.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from functools import partial

import torch

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.baseline import baseline_training_loss
from benchmarks.bench_generate import tanh_attention_forward
from benchmarks.common import (
    SIZES,
    Size,
    build_model,
    coco_caption_lengths,
    count_flops,
    matmul_peak_gflops,
    median_time,
    parse_args,
    random_labels,
    random_regions,
    report,
)
from show_attend_tell import ShowAttendTellEncoderOutput, ShowAttendTellForConditionalGeneration
from show_attend_tell.reporting import markdown_table

TARGETS = {("tutorial", 32): 3.0}


def our_loss(
    model: ShowAttendTellForConditionalGeneration,
    regions: torch.Tensor,
    labels: torch.LongTensor,
    use_cache: bool | None = None,
) -> torch.Tensor:
    """The training loss; `use_cache=True` turns off packing (every row runs every step, as with a cache)."""
    encoder_outputs = ShowAttendTellEncoderOutput(last_hidden_state=regions)
    return model(encoder_outputs=encoder_outputs, labels=labels, use_cache=use_cache).loss


def train_step(
    loss_fn: Callable[[torch.Tensor, torch.LongTensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    regions: torch.Tensor,
    labels: torch.LongTensor,
    autocast_dtype: torch.dtype | None = None,
) -> float:
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast("cpu", dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None):
        loss = loss_fn(regions, labels)
    loss.backward()
    optimizer.step()
    return loss.item()


def trainable_model(size: Size) -> ShowAttendTellForConditionalGeneration:
    model = build_model(size).train()
    model.freeze_encoder(trainable_blocks=0)
    return model


def adam(model: ShowAttendTellForConditionalGeneration) -> torch.optim.Optimizer:
    return torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)


def bench_size(size: Size, batches: list[int], args, peak: float, lengths: list[int]) -> list:
    model = trainable_model(size)
    ours = partial(train_step, partial(our_loss, model), adam(model))
    baseline = partial(train_step, partial(baseline_training_loss, model), adam(model))
    rows = []
    for batch in batches:
        regions = random_regions(size, batch)
        labels = random_labels(batch, model.config.vocab_size, lengths)
        seconds = median_time(partial(ours, regions, labels), args.repeats)
        base_seconds = median_time(partial(baseline, regions, labels), args.base_repeats, warmup=0)
        flops = count_flops(partial(ours, regions, labels))
        base_flops = count_flops(partial(baseline, regions, labels))
        ratio = base_seconds / seconds
        target = TARGETS.get((size.name, batch))
        rows.append(
            [
                size.name,
                batch,
                batch / seconds,
                batch / base_seconds,
                f"**{ratio:.1f}x**" if target is None else f"**{ratio:.1f}x** (target {target:.0f}x)",
                flops / batch / 1e9,
                base_flops / batch / 1e9,
                f"{100 * flops / seconds / 1e9 / peak:.0f}%",
                f"{100 * base_flops / base_seconds / 1e9 / peak:.0f}%",
                f"{(labels != -100).sum(1).float().mean():.1f} / {labels.shape[1]}",
            ]
        )
        print(markdown_table(HEADERS, rows[-1:]), flush=True)
    return rows


HEADERS = [
    "size",
    "batch",
    "ours captions/s",
    "baseline captions/s",
    "speed-up",
    "ours GFLOP/caption",
    "baseline GFLOP/caption",
    "ours % peak",
    "baseline % peak",
    "tokens mean / max",
]


def experiments(size: Size, batch: int, args, lengths: list[int]) -> list:
    """Our step as is, without each fast path, under bf16 autocast, and with torch.compile."""
    model = trainable_model(size)
    optimizer = adam(model)
    regions = random_regions(size, batch)
    labels = random_labels(batch, model.config.vocab_size, lengths)
    rows = []

    def measure(name: str, loss_fn, autocast_dtype: torch.dtype | None = None, warmup: int = 1) -> None:
        seconds = median_time(
            partial(train_step, loss_fn, optimizer, regions, labels, autocast_dtype), args.repeats, warmup
        )
        plain = rows[0][1] if rows else batch / seconds
        rows.append([name, batch / seconds, f"{batch / seconds / plain:.2f}x"])
        print(markdown_table(["variant", "captions/s", "vs as is"], rows[-1:]), flush=True)

    loss_fn = partial(our_loss, model)
    measure("as is (fp32)", loss_fn)
    measure("every row runs every step (no packing)", partial(our_loss, model, use_cache=True))
    model.attention.forward = types.MethodType(tanh_attention_forward, model.attention)
    measure("attention written with tanh (the paper's formula)", loss_fn)
    del model.attention.forward
    measure("bf16 autocast", loss_fn, torch.bfloat16)
    model.attention.compile()
    model.lstm.compile()
    measure("torch.compile(attention, LSTM cell)", loss_fn, warmup=2)
    return rows


def add_arguments(parser) -> None:
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--no-experiments", action="store_true", help="Skip the bf16 / torch.compile measurements.")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    batches = [32] if args.quick else [32, 80]
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.base_repeats = 1 if args.quick else 2
    lengths = coco_caption_lengths()
    peak = matmul_peak_gflops()
    rows = []
    for name in args.sizes:
        rows += bench_size(SIZES[name], batches, args, peak, lengths)
    body = markdown_table(HEADERS, rows) + (
        f"\n\nOne optimiser step (forward, loss, backward, Adam) on precomputed features; FLOPs are those of matrix "
        f"products (torch's FlopCounterMode), '% peak' against this machine's measured fp32 matmul peak of "
        f"{peak:.0f} GFLOP/s. Ours: median of {args.repeats} steps; baseline: median of {args.base_repeats}."
    )
    if not args.no_experiments and not args.quick:
        size = SIZES[args.sizes[0]]
        body += f"\n\nOur step with speed options ({size.name} size, batch 32):\n\n" + markdown_table(
            ["variant", "captions/s", "vs as is"], experiments(size, 32, args, lengths)
        )
    report("Training step: captions per second", body, args)


if __name__ == "__main__":
    main()
