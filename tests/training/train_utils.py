"""Helpers of the training-loop tests: tiny settings and an in-process run of `training.train`."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from accelerate.state import AcceleratorState, GradientState
from safetensors.torch import load_file

REPO_ROOT = Path(__file__).resolve().parents[2]
TRAIN_COMMAND = ["-m", "training.train"]  # run from REPO_ROOT, as the README says

# A model that trains in well under a second per step on one CPU core (resnet10t at 64 px: a 2x2 region grid).
TINY_ARGS = [
    "--backbone", "resnet10t",
    "--image_size", "64",
    "--attention_dim", "32",
    "--embed_dim", "32",
    "--decoder_dim", "32",
    "--no_pretrained_backbone",
    "--per_device_train_batch_size", "8",
    "--per_device_eval_batch_size", "8",
    "--num_beams", "2",
    "--max_new_tokens", "12",
    "--logging_steps", "1",
    "--num_warmup_steps", "2",
]  # fmt: skip


def exact_resume_args(tmp_path: Path, *extra) -> list:
    """Tiny settings of the exact-resume tests: 8 optimizer steps over 12 images (2 accumulated batches per step),
    a checkpoint every 2 steps (all kept), no validation, the feature cache; `extra` adds options."""
    return [
        *TINY_ARGS,
        *extra,
        "--max_train_samples", 12,
        "--gradient_accumulation_steps", 2,
        "--max_train_steps", 8,
        "--checkpointing_steps", 2,
        "--checkpoints_total_limit", 10,
        "--no_validation",
        "--feature_cache", tmp_path / "cache",
    ]  # fmt: skip


def run_training(*argv: str) -> dict:
    """`training.train` with `argv` in this process (fresh Accelerate state); returns its summary."""
    from training.train import main

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    try:
        return main([str(arg) for arg in argv])
    finally:
        AcceleratorState._reset_state(reset_partial_state=True)
        GradientState._reset_state()


def read_weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def read_json(path: Path):
    return json.loads(Path(path).read_text())
