"""The `show-attend-tell` command line.

    show-attend-tell caption photo.jpg other.png --model ./my-model --num-beams 5 --attention-dir out/ --gif

Each subcommand is a function that adds its parser to the registry with `@command`; `main()` builds the parser from
the registry, runs the chosen subcommand and turns `CLIError`s into a one-line message on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROG = "show-attend-tell"
COMMANDS: dict[str, Callable[[Any], argparse.ArgumentParser]] = {}


class CLIError(Exception):
    """An expected failure (bad path, bad file, bad model): reported in one line, exit status 2, no traceback."""


def command(name: str) -> Callable[[Callable], Callable]:
    """Register `add_parser(subparsers) -> parser` as subcommand `name`; the parser must set `run=callable(args)`."""

    def register(add_parser: Callable[[Any], argparse.ArgumentParser]) -> Callable:
        COMMANDS[name] = add_parser
        return add_parser

    return register


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


# --------------------------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------------------------


def load_captioner(model_name: str, device: str | None = None, label: str | None = None) -> tuple[Any, Any]:
    """`(model, processor)` on `device` (default: cuda when available), loaded by the library's `load_captioner`; a
    folder or Hub id that is not a complete Show-Attend-Tell model is a `CLIError` naming `label` (default
    `--model NAME`)."""
    from .pipeline_show_attend_tell import ModelFolderError
    from .pipeline_show_attend_tell import load_captioner as load_model_folder

    try:
        return load_model_folder(
            model_name, device or ("cuda" if _cuda_available() else "cpu"), label=label or f"--model {model_name}"
        )
    except ModelFolderError as error:
        raise CLIError(str(error)) from None


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """Silence transformers' and huggingface_hub's progress bars, warnings and retry messages (restored after), so
    stdout carries only captions and stderr only errors."""
    from huggingface_hub.utils import logging as hub_logging
    from transformers.utils import logging as transformers_logging

    verbosity, hub_verbosity = transformers_logging.get_verbosity(), hub_logging.get_verbosity()
    bars = transformers_logging.is_progress_bar_enabled()
    transformers_logging.set_verbosity_error()
    hub_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        hub_logging.set_verbosity(hub_verbosity)
        if bars:
            transformers_logging.enable_progress_bar()


def check_image_files(paths: Sequence[str]) -> None:
    """Fail fast, before the model loads, on missing files, files that are not images and images too large to decode
    safely (header check only)."""
    from PIL import Image, UnidentifiedImageError

    from .processing_show_attend_tell import MAX_IMAGE_PIXELS

    for name in paths:
        path = Path(name)
        if not path.exists():
            raise CLIError(f"image file not found: {name}")
        if not path.is_file():
            raise CLIError(f"not an image file: {name} is a directory")
        try:
            with Image.open(path) as image:
                width, height = image.size
        except (Image.DecompressionBombError, UnidentifiedImageError, OSError) as error:
            raise CLIError(f"not an image file: {name} ({_one_line(error)})") from None
        if width * height > MAX_IMAGE_PIXELS:
            raise CLIError(f"image too large: {name} is {width}x{height} pixels (limit {MAX_IMAGE_PIXELS:,})")


def _figure_stems(paths: Sequence[str]) -> list[str]:
    """File stems for the attention figures, made unique (`photo`, `photo-2`, ...) when two images share one."""
    stems, seen = [], {}
    for name in paths:
        stem = Path(name).stem
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


# --------------------------------------------------------------------------------------------------------------------
# caption
# --------------------------------------------------------------------------------------------------------------------


@command("caption")
def add_caption_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "caption",
        help="caption images (prints 'path<TAB>caption' per image) and optionally save attention figures",
        description="Caption images with a Show-Attend-Tell model. Prints one 'path<TAB>caption' line per image.",
    )
    parser.add_argument("images", nargs="+", metavar="IMG", help="image files (JPEG, PNG, ...)")
    parser.add_argument("--model", required=True, help="saved model folder or Hugging Face Hub id")
    parser.add_argument(
        "--num-beams", type=positive_int, help="beam size, 1 = greedy (default: the model's generation_config.json)"
    )
    parser.add_argument(
        "--max-new-tokens", type=positive_int, help="longest caption in words (default: the model's generation_config)"
    )
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per generate() call")
    parser.add_argument(
        "--attention-dir", type=Path, help="save a per-word attention figure OUT/<image stem>.png for every image"
    )
    parser.add_argument("--gif", action="store_true", help="also save an animated OUT/<image stem>.gif")
    parser.add_argument("--columns", type=positive_int, default=5, help="panels per row in the figures")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.set_defaults(run=run_caption)
    return parser


def run_caption(args: argparse.Namespace) -> int:
    if args.gif and args.attention_dir is None:
        raise CLIError("--gif needs --attention-dir")
    check_image_files(args.images)
    if args.attention_dir is not None:
        if args.attention_dir.exists() and not args.attention_dir.is_dir():
            raise CLIError(f"--attention-dir {args.attention_dir}: exists and is not a folder")
        args.attention_dir.mkdir(parents=True, exist_ok=True)

    from .pipeline_show_attend_tell import caption_images
    from .visualization import plot_attention, save_attention_gif

    with quiet_libraries():
        model, processor = load_captioner(args.model, args.device)
    stems = _figure_stems(args.images)
    for start in range(0, len(args.images), args.batch_size):  # one batch at a time, so lines appear as they come
        names = args.images[start : start + args.batch_size]
        try:
            results = caption_images(
                model, processor, names, num_beams=args.num_beams, max_new_tokens=args.max_new_tokens
            )
        except ValueError as error:
            raise CLIError(_one_line(error)) from None
        for name, stem, result in zip(names, stems[start : start + args.batch_size], results, strict=True):
            print(f"{name}\t{result.text}", flush=True)
            if args.attention_dir is None:
                continue
            if not result.words:
                print(f"{PROG}: warning: empty caption for {name}; no attention figure", file=sys.stderr)
                continue
            plot_attention(result, path=args.attention_dir / f"{stem}.png", columns=args.columns)
            if args.gif:
                save_attention_gif(result, args.attention_dir / f"{stem}.gif")
    return 0


# --------------------------------------------------------------------------------------------------------------------
# export-onnx
# --------------------------------------------------------------------------------------------------------------------


@command("export-onnx")
def add_export_onnx_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export-onnx",
        help="write MODEL/onnx/ (encoder + decoder step for ONNX Runtime and the browser), verified against PyTorch",
        description="Export a saved model folder to ONNX (MODEL/onnx/), check the graphs and verify them against "
        "the PyTorch model: prints the largest logit and attention differences and how many captions agree.",
    )
    parser.add_argument("model", type=Path, metavar="MODEL", help="saved model folder")
    parser.add_argument("--quantize", action="store_true", help="also write an int8 dynamically quantised decoder")
    parser.add_argument("--verify-images", nargs="+", default=None, metavar="IMG", help="photos to verify on")
    parser.add_argument("--num-beams", type=positive_int, default=3, help="beam size checked (default 3)")
    parser.set_defaults(run=run_export_onnx)
    return parser


def run_export_onnx(args: argparse.Namespace) -> int:
    import json

    if args.verify_images:
        check_image_files(args.verify_images)
    from .onnx_export import OnnxExportError, export_onnx

    with quiet_libraries():
        load_captioner(str(args.model), "cpu", label=str(args.model))  # a damaged folder: the one-line message
    try:
        with quiet_libraries():
            report = export_onnx(args.model, args.verify_images, quantize=args.quantize, num_beams=args.num_beams)
    except OnnxExportError as error:  # names the folder already
        raise CLIError(_one_line(error)) from None
    except (OSError, ValueError) as error:  # a broken folder: unreadable config, weights or tokenizer
        raise CLIError(f"{args.model}: {_one_line(error)}") from None
    for name, size in report.files.items():
        print(f"{report.onnx_dir}/{name}\t{size / 1e6:.2f} MB")
    print(json.dumps({"verification": report.verification, "quantized": report.quantized_verification}, indent=1))
    return 0


# --------------------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description="Show, Attend and Tell image captioning.")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_parser in COMMANDS.values():
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 2 bad usage or input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except CLIError as error:
        print(f"{PROG} {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
