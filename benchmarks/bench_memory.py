"""Peak resident memory of generate() (beam 5) and of a training step, ours against the tutorial baseline.

    python -m benchmarks.bench_memory [--quick]

Each measurement runs in its own Python process (`--child CASE`), so peaks never mix: the process builds the model
and inputs, notes its peak resident set size (`ru_maxrss`), runs the operation twice, and reports the new peak.
Batch 32 (8 with --quick), tutorial size by default.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from functools import partial

import torch

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import (
    REPO_ROOT,
    SIZES,
    build_model,
    coco_caption_lengths,
    parse_args,
    random_labels,
    random_regions,
    report,
)
from show_attend_tell.reporting import markdown_table

CASES = {
    "generate, ours": ("generate", "ours"),
    "generate, baseline": ("generate", "baseline"),
    "training step, ours": ("train", "ours"),
    "training step, baseline": ("train", "baseline"),
}


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def run_case(case: str, size_name: str, batch: int, num_beams: int) -> dict:
    """Runs in the child process: the peak before and after the operation, in MiB."""
    from benchmarks.baseline import baseline_beam_search, baseline_training_loss
    from benchmarks.bench_generate import our_generate
    from benchmarks.bench_train_step import adam, our_loss, train_step, trainable_model

    operation, side = CASES[case]
    size = SIZES[size_name]
    regions = random_regions(size, batch)
    if operation == "generate":
        model = build_model(size)
        if side == "ours":
            run = partial(our_generate, model, regions, num_beams, 30)
        else:
            run = partial(baseline_beam_search, model, regions, num_beams, 30)
    else:
        model = trainable_model(size)
        labels = random_labels(batch, model.config.vocab_size, coco_caption_lengths())
        loss_fn = partial(our_loss, model) if side == "ours" else partial(baseline_training_loss, model)
        run = partial(train_step, loss_fn, adam(model), regions, labels)
    setup = peak_rss_mib()
    for _ in range(2):
        run()
    return {"setup_mib": setup, "peak_mib": peak_rss_mib()}


def add_arguments(parser) -> None:
    parser.add_argument("--child", choices=list(CASES), help=argparse.SUPPRESS)
    parser.add_argument("--size", default="tutorial", choices=list(SIZES))
    parser.add_argument("--batch", type=int, default=None)
    parser.add_argument("--num-beams", type=int, default=5)


def main() -> None:
    args = parse_args(__doc__.splitlines()[0], add_arguments)
    batch = args.batch or (8 if args.quick else 32)
    if args.child:
        print(json.dumps(run_case(args.child, args.size, batch, args.num_beams)))
        return
    rows = []
    for case in CASES:
        command = [sys.executable, "-m", "benchmarks.bench_memory", "--child", case, "--size", args.size]
        command += ["--batch", str(batch)]
        command += ["--num-beams", str(args.num_beams), "--threads", str(torch.get_num_threads()), "--no-save"]
        result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
        if result.returncode != 0:
            raise RuntimeError(f"Memory measurement {case!r} failed:\n{result.stderr[-2000:]}")
        measured = json.loads(result.stdout.strip().splitlines()[-1])
        rows.append([case, batch, measured["peak_mib"], measured["peak_mib"] - measured["setup_mib"]])
        print(markdown_table(["case", "batch", "peak RSS MiB", "above setup MiB"], rows[-1:]), flush=True)
    body = markdown_table(["case", "batch", "peak RSS (MiB)", "peak above model + inputs (MiB)"], rows) + (
        f"\n\n{args.size} size; generate: beam {args.num_beams}, up to 30 tokens; training step: forward, loss, "
        "backward and Adam on precomputed features. One process per row (`ru_maxrss`)."
    )
    report("Peak resident memory", body, args)


if __name__ == "__main__":
    main()
