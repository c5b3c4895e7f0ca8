"""Kill a training run after a checkpoint, resume it, and compare it with an uninterrupted run, bit for bit.

    python -m benchmarks.resume_check --config_file training/recipes/flickr8k.yaml --output_root runs/resume-check \
        [--steps 40] [--interrupt_after 20] [--no-save]

Three runs of `python -m training.train --config_file FILE --max_train_steps STEPS --checkpointing_steps
INTERRUPT_AFTER --no_validation` (the recipe's data, model and feature cache; validation is left out, so the final
weights are the last step's):
1. `OUTPUT_ROOT/full` runs to the end;
2. `OUTPUT_ROOT/interrupted` is killed (SIGKILL, as a lost machine would) once its checkpoint `step_INTERRUPT_AFTER`
   is complete;
3. the same command with `--resume_from_checkpoint` continues it in `OUTPUT_ROOT/interrupted`.
The table says whether the two final models are equal tensor for tensor. `tests/training/test_train_resume.py` proves
the same on tiny models in CI; this script is for a real recipe, run by hand.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from benchmarks.common import REPO_ROOT, parse_args, report
from show_attend_tell.reporting import markdown_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config_file", required=True, help="A training recipe (YAML or JSON).")
    parser.add_argument("--output_root", required=True, type=Path, help="A new folder for the two runs.")
    parser.add_argument("--steps", type=int, default=40, help="Optimizer steps of each run.")
    parser.add_argument("--interrupt_after", type=int, default=20, help="Kill the second run after this checkpoint.")


def train_command(args: argparse.Namespace, output_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "training.train", "--config_file", args.config_file, "--output_dir", str(output_dir),
        "--max_train_steps", str(args.steps), "--checkpointing_steps", str(args.interrupt_after), "--no_validation",
        *extra,
    ]  # fmt: skip


def run_killed_after_checkpoint(command: list[str], checkpoint: Path) -> float:
    """Start `command`, kill its process group once `checkpoint` exists; the seconds it ran."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, start_new_session=True)
    while not checkpoint.is_dir():
        if process.poll() is not None:
            raise SystemExit(f"the run to interrupt ended (exit {process.returncode}) before {checkpoint} existed")
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    return time.perf_counter() - start


def timed_run(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, check=True)
    return time.perf_counter() - start


def main() -> None:
    args = parse_args(__doc__.split("\n\n")[0], add_arguments)
    if not 0 < args.interrupt_after < args.steps:
        raise SystemExit(f"--interrupt_after must lie between 0 and --steps ({args.steps}), got {args.interrupt_after}")
    if args.output_root.exists():
        raise SystemExit(f"--output_root {args.output_root} exists: pick a new folder (nothing is overwritten)")
    full, interrupted = args.output_root / "full", args.output_root / "interrupted"

    seconds_full = timed_run(train_command(args, full))
    seconds_killed = run_killed_after_checkpoint(
        train_command(args, interrupted), interrupted / "checkpoints" / f"step_{args.interrupt_after}"
    )
    seconds_resumed = timed_run(train_command(args, interrupted, "--resume_from_checkpoint"))

    expected, actual = load_file(full / "model.safetensors"), load_file(interrupted / "model.safetensors")
    if expected.keys() != actual.keys():
        raise SystemExit(f"the two models hold different tensors: {sorted(expected.keys() ^ actual.keys())[:5]}")
    different = [name for name in expected if not torch.equal(expected[name], actual[name])]
    largest = max((float((expected[name] - actual[name]).abs().max()) for name in different), default=0.0)
    rows = [
        ["uninterrupted", args.steps, f"{seconds_full:.0f}"],
        [f"killed after checkpoint step_{args.interrupt_after}", "", f"{seconds_killed:.0f}"],
        ["resumed (--resume_from_checkpoint)", args.steps, f"{seconds_resumed:.0f}"],
    ]
    body = (
        f"Recipe {args.config_file}, {args.steps} steps, no validation.\n\n"
        + markdown_table(["run", "steps", "wall time (s)"], rows)
        + f"\n\nFinal models: {len(expected) - len(different)} of {len(expected)} tensors bit-identical"
        + ("." if not different else f"; largest difference {largest:.3g} (in {', '.join(different[:3])}, ...).")
    )
    report(f"Interrupted and resumed training: {Path(args.config_file).name}", body, args)
    if different:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
