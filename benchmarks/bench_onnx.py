"""End-to-end captioning speed from pixels: ONNX Runtime against PyTorch eager and the tutorial baseline, same weights.

    python -m benchmarks.bench_onnx [--quick] [--threads N] [--model FOLDER]

Images per second from `pixel_values` to token ids (CNN included; image decoding and resizing excluded, the same for
all) for greedy and beam 5, at batch 1 and 32 (`--quick`: 1 and 8):

- ONNX Runtime: `show_attend_tell_onnx.OnnxCaptioner.generate` (encoder graph, then the decoder-step graph in a numpy
  loop), float32 decoder and the int8 dynamically quantised one;
- PyTorch eager: `model.generate(pixel_values, ...)`;
- baseline: the CNN and the tutorial decoding (`baseline.py`), one image at a time.

The model is the default size (tf_efficientnet_lite0 at 256 px, 64 regions x 320, vocabulary 9490) with
`common.build_model`'s weights (captions of realistic length), exported with `show_attend_tell.onnx_export`, or a
trained folder with `--model`. Beam search on every side: no length penalty, stop once 5 captions have ended (the
tutorial's rule). ONNX Runtime and torch use the same number of threads (`--threads`, default 1). 'same' counts
captions token for token equal to PyTorch eager's.
"""

from __future__ import annotations

import shutil
import tempfile
from functools import partial
from pathlib import Path

import numpy as np
import torch

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.baseline import baseline_beam_search, baseline_greedy
from benchmarks.common import SIZES, TUTORIAL_VOCAB_SIZE, build_model, median_time, parse_args, report
from show_attend_tell import (
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
)
from show_attend_tell.onnx_export import export_onnx, until_eos
from show_attend_tell.reporting import markdown_table
from show_attend_tell_onnx import OnnxCaptioner

BEAM_OPTIONS = {"length_penalty": 0.0, "early_stopping": True}


def saved_default_model(directory: Path) -> Path:
    """`build_model`'s default-size model with a processor whose vocabulary has the same 9490 tokens, saved."""
    model = build_model(SIZES["default"])
    tokenizer = build_tokenizer([" ".join(f"w{i}" for i in range(TUTORIAL_VOCAB_SIZE - 4))])
    processor = ShowAttendTellProcessor(
        build_image_processor(model.config.backbone, model.config.image_size), tokenizer
    )
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def eager(model, pixel_values: torch.Tensor, num_beams: int, max_new_tokens: int) -> list[list[int]]:
    options = BEAM_OPTIONS if num_beams > 1 else {}
    sequences = model.generate(pixel_values, num_beams=num_beams, max_new_tokens=max_new_tokens, **options)
    return [until_eos(row, model.config.eos_token_id) for row in sequences.tolist()]


def onnx_runtime(captioner: OnnxCaptioner, pixel_values: np.ndarray, num_beams: int, max_new_tokens: int) -> list:
    options = BEAM_OPTIONS if num_beams > 1 else {}
    sequences, _, _ = captioner.generate(pixel_values, num_beams=num_beams, max_new_tokens=max_new_tokens, **options)
    return [until_eos(row, captioner.config["eos_token_id"]) for row in sequences.tolist()]


def baseline(model, pixel_values: torch.Tensor, num_beams: int, max_new_tokens: int) -> list[list[int]]:
    captions = []
    with torch.inference_mode():
        for image in pixel_values:
            regions = model.encoder.backbone_features(image.unsqueeze(0))
            if num_beams == 1:
                captions += baseline_greedy(model, regions, max_new_tokens)
            else:
                captions += baseline_beam_search(model, regions, num_beams, max_new_tokens)
    return captions


def add_arguments(parser) -> None:
    parser.add_argument("--max-new-tokens", type=int, default=30, help="Longest caption (default 30).")
    parser.add_argument("--model", type=Path, default=None, help="A trained folder instead of the default weights.")


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    threads = args.threads or 1
    torch.set_num_threads(threads)
    batches = [1, 8] if args.quick else [1, 32]
    repeats = args.repeats or (1 if args.quick else 2)
    if args.quick:
        args.max_new_tokens = min(args.max_new_tokens, 20)
    work = Path(tempfile.mkdtemp(prefix="bench_onnx_"))
    try:
        folder = work / "model"
        if args.model is not None:
            shutil.copytree(args.model, folder, ignore=shutil.ignore_patterns("checkpoints", "runs", "onnx"))
        else:
            saved_default_model(folder)
        export = export_onnx(folder, quantize=True)
        model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
        runtimes = {
            "ONNX Runtime": OnnxCaptioner(folder, threads=threads),
            "ONNX Runtime, int8 decoder": OnnxCaptioner(folder, quantized=True, threads=threads),
        }
        height, width = model.config.image_height_width
        pixels = torch.randn(max(batches), 3, height, width, generator=torch.Generator().manual_seed(0))
        rows = []
        for name, num_beams in {"greedy": 1, "beam 5": 5}.items():
            for batch in batches:
                batch_pixels = pixels[:batch]
                reference = eager(model, batch_pixels, num_beams, args.max_new_tokens)
                seconds = {"PyTorch eager": median_time(partial(eager, model, batch_pixels, num_beams,
                                                                args.max_new_tokens), repeats)}  # fmt: skip
                same = {"PyTorch eager": batch}
                for label, captioner in runtimes.items():
                    run = partial(onnx_runtime, captioner, batch_pixels.numpy(), num_beams, args.max_new_tokens)
                    same[label] = sum(a == b for a, b in zip(run(), reference, strict=True))
                    seconds[label] = median_time(run, repeats, warmup=0)
                run = partial(baseline, model, batch_pixels, num_beams, args.max_new_tokens)
                same["baseline"] = sum(a == b for a, b in zip(run(), reference, strict=True))
                seconds["baseline"] = median_time(run, 1, warmup=0)
                for label, value in seconds.items():
                    rows.append([
                        name, batch, label, batch / value, f"{seconds['PyTorch eager'] / value:.2f}x",
                        f"{seconds['baseline'] / value:.2f}x", f"{same[label]}/{batch}",
                    ])  # fmt: skip
                print(markdown_table(["decoding", "batch", "path", "img/s", "vs eager", "vs baseline", "same"],
                                     rows[-len(seconds):]), flush=True)  # fmt: skip
        files = ", ".join(f"{name} {size / 1e6:.1f} MB" for name, size in export.files.items())
        body = (
            markdown_table(
                ["decoding", "batch", "path", "images/s", "vs PyTorch eager", "vs baseline", "same caption as eager"],
                rows,
            )
            + f"\n\n{threads} thread(s) for torch and ONNX Runtime; max_new_tokens={args.max_new_tokens}; median of "
            f"{repeats} run(s), baseline 1 pass; weights: {args.model or 'common.build_model (default size)'}; "
            f"files: {files}. Export verification: {export.verification}; int8 decoder: "
            f"{export.quantized_verification}."
        )
        report("ONNX Runtime vs PyTorch eager vs baseline: captioning from pixels", body, args)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
