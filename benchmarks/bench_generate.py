"""Captioning speed: our batched `generate()` against the tutorial's one-image-at-a-time decoding, same weights.

    python -m benchmarks.bench_generate [--quick]

Images per second for greedy and beam search (3 and 5 beams) at batch 1, 8 and 32, at the tutorial's COCO size
(196 regions x 2048 features, region features given) and at our default backbone's size (64 regions x 320, features
given, plus rows that include the CNN). Beam search on both sides: no length penalty, stop once `num_beams` captions
have ended (the tutorial's rule: `length_penalty=0.0, early_stopping=True`). The baseline decodes one image at a time,
so its images/s for a batch is the batch size over the sum of its per-image times on those images.
"""

from __future__ import annotations

import statistics
import time
import types
from functools import partial

import torch
from transformers import GenerationMixin

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.baseline import baseline_beam_search, baseline_greedy
from benchmarks.common import (
    SIZES,
    Size,
    build_model,
    count_flops,
    matmul_peak_gflops,
    median_time,
    parse_args,
    random_pixels,
    random_regions,
    report,
)
from show_attend_tell import ShowAttendTellEncoderOutput, ShowAttendTellForConditionalGeneration
from show_attend_tell.reporting import markdown_table

TARGETS = {("tutorial", "beam 5", 32): 10.0, ("tutorial", "greedy", 32): 20.0}


def our_generate(
    model: ShowAttendTellForConditionalGeneration, regions: torch.Tensor, num_beams: int, max_new_tokens: int
) -> torch.LongTensor:
    """Our path for precomputed region features: the attention projection once per image, then `generate()`."""
    with torch.inference_mode():
        encoder_outputs = ShowAttendTellEncoderOutput(
            last_hidden_state=regions, projected_regions=model.encoder.region_projection(regions)
        )
        return model.generate(
            encoder_outputs=encoder_outputs,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            **beam_options(num_beams),
        )


def beam_options(num_beams: int) -> dict:
    return (
        {"do_sample": False} if num_beams == 1 else {"do_sample": False, "length_penalty": 0.0, "early_stopping": True}
    )


def baseline_generate(
    model: ShowAttendTellForConditionalGeneration, regions: torch.Tensor, num_beams: int, max_new_tokens: int
) -> list[list[int]]:
    if num_beams == 1:
        return baseline_greedy(model, regions, max_new_tokens)
    return baseline_beam_search(model, regions, num_beams, max_new_tokens)


def until_eos(sequence: torch.Tensor, eos_token_id: int) -> list[int]:
    """Token ids up to and including the first `eos` (beam search pads ended captions with `eos` when pad id is 0)."""
    tokens = sequence.tolist()
    return tokens[: tokens.index(eos_token_id) + 1] if eos_token_id in tokens else tokens


def per_image_times(fn, images: torch.Tensor, repeats: int) -> tuple[list[float], list[list[int]]]:
    """Median seconds of `fn` on each image alone (the baseline decodes one image at a time), and its captions."""
    times = [[] for _ in images]
    captions = []
    for repeat in range(repeats):
        for index in range(len(images)):
            start = time.perf_counter()
            caption = fn(images[index : index + 1])
            times[index].append(time.perf_counter() - start)
            if repeat == 0:
                captions.extend(caption)
    return [statistics.median(t) for t in times], captions


def bench_size(size: Size, batches: list[int], decodings: dict[str, int], args, peak: float) -> tuple[list, list]:
    model = build_model(size)
    eos = model.config.eos_token_id
    regions = random_regions(size, max(batches))
    speed_rows, flop_rows = [], []
    for name, num_beams in decodings.items():
        # The baseline, image by image (one warm-up image first).
        baseline_generate(model, regions[:1], num_beams, args.max_new_tokens)
        base_times, base_captions = per_image_times(
            partial(baseline_generate, model, num_beams=num_beams, max_new_tokens=args.max_new_tokens),
            regions,
            args.base_repeats,
        )
        for batch in batches:
            batch_regions = regions[:batch]
            ours = our_generate(model, batch_regions, num_beams, args.max_new_tokens)
            ours_captions = [until_eos(row, eos) for row in ours]
            seconds = median_time(
                partial(our_generate, model, batch_regions, num_beams, args.max_new_tokens), args.repeats, warmup=0
            )
            base_seconds = sum(base_times[:batch])
            same = sum(a == b for a, b in zip(ours_captions, base_captions[:batch], strict=True))
            ratio = base_seconds / seconds
            target = TARGETS.get((size.name, name, batch))
            speed_rows.append(
                [
                    size.name,
                    name,
                    batch,
                    batch / seconds,
                    batch / base_seconds,
                    f"**{ratio:.1f}x**" if target is None else f"**{ratio:.1f}x** (target {target:.0f}x)",
                    f"{same}/{batch}",
                    statistics.mean(len(c) - 1 for c in base_captions[:batch]),
                ]
            )
            if batch == max(batches):
                flops = count_flops(partial(our_generate, model, batch_regions, num_beams, args.max_new_tokens))
                base_flops = count_flops(
                    partial(baseline_generate, model, batch_regions, num_beams, args.max_new_tokens)
                )
                flop_rows.append(
                    [
                        size.name,
                        name,
                        batch,
                        flops / batch / 1e9,
                        base_flops / batch / 1e9,
                        flops / seconds / 1e9,
                        f"{100 * flops / seconds / 1e9 / peak:.0f}%",
                        base_flops / base_seconds / 1e9,
                        f"{100 * base_flops / base_seconds / 1e9 / peak:.0f}%",
                    ]
                )
    return speed_rows, flop_rows


def generate_from_pixels(
    model: ShowAttendTellForConditionalGeneration, pixel_values: torch.Tensor, num_beams: int, max_new_tokens: int
) -> torch.LongTensor:
    return model.generate(pixel_values, num_beams=num_beams, max_new_tokens=max_new_tokens, **beam_options(num_beams))


def baseline_from_pixels(
    model: ShowAttendTellForConditionalGeneration, pixel_values: torch.Tensor, num_beams: int, max_new_tokens: int
) -> list[list[int]]:
    """The CNN and the tutorial decoding, one image at a time."""
    captions = []
    with torch.inference_mode():
        for image in pixel_values:
            regions = model.encoder.backbone_features(image.unsqueeze(0))
            captions += baseline_generate(model, regions, num_beams, max_new_tokens)
    return captions


def bench_with_cnn(size: Size, batch: int, decodings: dict[str, int], args) -> list:
    """Rows from pixels: our batched CNN + generate against the CNN and the baseline per image."""
    model = build_model(size)
    pixel_values = random_pixels(size, batch)
    rows = []
    for name, num_beams in decodings.items():
        seconds = median_time(
            partial(generate_from_pixels, model, pixel_values, num_beams, args.max_new_tokens), args.repeats
        )
        base_seconds = median_time(
            partial(baseline_from_pixels, model, pixel_values, num_beams, args.max_new_tokens),
            args.base_repeats,
            warmup=0,
        )
        ratio = f"**{base_seconds / seconds:.1f}x**"
        rows.append([f"{size.name} + CNN", name, batch, batch / seconds, batch / base_seconds, ratio, "", ""])
    return rows


def tanh_attention_forward(
    self, regions: torch.Tensor, projected_regions: torch.Tensor, hidden: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`ShowAttendTellAttention.forward` with the paper's formula written directly, `w . tanh(W_a a + W_h h) + b`,
    instead of the package's equal-valued sigmoid form."""
    images, num_regions, attention_dim = projected_regions.shape
    query = self.hidden_projection(hidden).view(images, -1, 1, attention_dim)
    alpha = self.score(torch.tanh(projected_regions.unsqueeze(1) + query)).squeeze(-1).softmax(dim=-1)
    context = torch.bmm(alpha, regions).view(hidden.shape[0], -1)
    beta = torch.sigmoid(self.gate(hidden))
    return beta * context, alpha.view(hidden.shape[0], num_regions), beta.mean(dim=-1)


def repeat_per_row(model: ShowAttendTellForConditionalGeneration) -> None:
    """Let `generate()` repeat the encoder outputs for every beam (transformers' default) instead of sharing them."""
    model._expand_inputs_for_generation = types.MethodType(GenerationMixin._expand_inputs_for_generation, model)


def uncached_generate(
    model: ShowAttendTellForConditionalGeneration, regions: torch.Tensor, num_beams: int, max_new_tokens: int
) -> torch.LongTensor:
    """Region features without their projection, through transformers' `generate()` itself (ours would project them
    once): `forward()` then projects the regions at every step."""
    with torch.inference_mode():
        return GenerationMixin.generate(
            model,
            encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=regions),
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            **beam_options(num_beams),
        )


def bf16_generate(
    model: ShowAttendTellForConditionalGeneration, regions: torch.Tensor, num_beams: int, max_new_tokens: int
) -> torch.LongTensor:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return our_generate(model, regions, num_beams, max_new_tokens)


def experiments(size: Size, batch: int, num_beams: int, args) -> list:
    """Our generate() as is and with speed options, same images; 'same' compares captions with the plain run."""
    model = build_model(size)
    regions = random_regions(size, batch)
    eos = model.config.eos_token_id
    reference = [until_eos(row, eos) for row in our_generate(model, regions, num_beams, args.max_new_tokens)]
    variants = [("as is", our_generate), ("projection recomputed at every step (by forward())", uncached_generate)]
    variants.append(("bf16 autocast", bf16_generate))
    rows = []
    plain = None

    def measure(name: str, fn, warmup: int = 1) -> None:
        nonlocal plain
        captions = [until_eos(row, eos) for row in fn(model, regions, num_beams, args.max_new_tokens)]
        seconds = median_time(partial(fn, model, regions, num_beams, args.max_new_tokens), args.repeats, warmup)
        plain = plain or seconds
        same = sum(a == b for a, b in zip(captions, reference, strict=True))
        rows.append([name, batch / seconds, f"{plain / seconds:.2f}x", f"{same}/{batch}"])
        print(markdown_table(["variant", "img/s", "vs as is", "same"], rows[-1:]), flush=True)

    for name, fn in variants:
        measure(name, fn)
    repeat_per_row(model)
    measure("encoder outputs repeated for every beam (transformers' default)", our_generate)
    del model._expand_inputs_for_generation
    model.attention.forward = types.MethodType(tanh_attention_forward, model.attention)
    measure("attention written with tanh (the paper's formula)", our_generate)
    del model.attention.forward
    if not args.quick:
        model.attention.compile()
        measure("torch.compile(attention)", our_generate, warmup=2)
    return rows


def add_arguments(parser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=30, help="Longest caption (default 30).")
    parser.add_argument("--sizes", nargs="+", default=list(SIZES), choices=list(SIZES))


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    batches = [1, 8] if args.quick else [1, 8, 32]
    args.repeats = args.repeats or (2 if args.quick else 3)
    args.base_repeats = 1
    if args.quick:
        args.max_new_tokens = min(args.max_new_tokens, 20)
    decodings = {"greedy": 1, "beam 3": 3, "beam 5": 5}
    peak = matmul_peak_gflops()
    speed_rows, flop_rows = [], []
    for name in args.sizes:
        rows, flops = bench_size(SIZES[name], batches, decodings, args, peak)
        speed_rows += rows
        flop_rows += flops
        print(
            markdown_table(
                ["size", "decoding", "batch", "ours img/s", "baseline img/s", "speed-up", "same", "words"], rows
            ),
            flush=True,
        )
    if "default" in args.sizes:
        speed_rows += bench_with_cnn(SIZES["default"], max(batches), {"greedy": 1, "beam 5": 5}, args)
    body = (
        markdown_table(
            ["size", "decoding", "batch", "ours img/s", "baseline img/s", "speed-up", "same caption", "mean tokens"],
            speed_rows,
        )
        + f"\n\nFLOPs (matrix products) per caption and throughput, against this machine's measured fp32 matmul peak "
        f"of {peak:.0f} GFLOP/s (2048x2048 matmul, same run):\n\n"
        + markdown_table(
            [
                "size",
                "decoding",
                "batch",
                "ours GFLOP/caption",
                "baseline GFLOP/caption",
                "ours GFLOP/s",
                "ours % peak",
                "baseline GFLOP/s",
                "baseline % peak",
            ],
            flop_rows,
        )
        + f"\n\nmax_new_tokens={args.max_new_tokens}; ours: median of {args.repeats} runs; baseline: "
        f"{args.base_repeats} pass(es) over the same images. 'same caption': images whose caption is token-for-token "
        "the baseline's."
    )
    size = SIZES[args.sizes[0]]
    body += f"\n\nSpeed options ({size.name} size, beam 5, batch {max(batches)}):\n\n" + markdown_table(
        ["variant", "img/s", "vs as is", "same caption"], experiments(size, max(batches), 5, args)
    )
    report("generate(): images per second", body, args)


if __name__ == "__main__":
    main()
