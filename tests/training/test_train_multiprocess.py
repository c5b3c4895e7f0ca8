"""Two data-parallel CPU processes (gloo) complete a run and end with the same weights, through both stages (frozen
encoder from the feature cache, then fine-tuning of the top encoder block).

With accelerate 1.x, `accelerate launch --cpu --num_processes 2` starts a single process (its simple launcher); two
CPU processes come from the torchrun launcher (`--multi_gpu`) plus the script's `--cpu` flag."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import make_tiny
from tests.training.train_utils import REPO_ROOT, TINY_ARGS, TRAIN_COMMAND, read_json, read_weights

pytestmark = pytest.mark.slow  # three two-process launches: about a minute


def same_weights_in_both_processes(output_dir) -> list[dict]:
    """Assert that both processes saved the same weights (`--save_weights_hash`); return the run's log history."""
    hashes = [(output_dir / f"weights_hash_{rank}.txt").read_text() for rank in (0, 1)]
    assert hashes[0] == hashes[1]
    return read_json(output_dir / "trainer_state.json")["log_history"]


def launch_two_processes(*train_args, by_path: bool = False) -> subprocess.CompletedProcess:
    """`python -m training.train` in two data-parallel CPU processes (gloo), with the tiny model settings; `by_path`:
    README's command as typed instead, the `accelerate` command with the script's path (training/train.py)."""
    if by_path:
        launcher, script = [Path(sys.executable).with_name("accelerate"), "launch"], ["training/train.py"]
    else:
        launcher, script = [sys.executable, "-m", "accelerate.commands.launch"], TRAIN_COMMAND
    command = [
        *launcher,
        "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        *script,
        "--cpu",
        *TINY_ARGS,
        *train_args,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def test_two_cpu_processes_end_with_identical_weights(tmp_path):
    output_dir = tmp_path / "run"
    result = launch_two_processes(
        "--output_dir", output_dir,
        "--max_train_samples", 16,  # 64 pairs: 4 batches of 8 per process and epoch
        "--max_eval_samples", 4,
        "--num_train_epochs", 2,
        "--fine_tune_encoder_after", 1,
        "--fine_tune_encoder_blocks", 1,
        "--feature_cache", tmp_path / "cache",
        "--checkpointing_steps", "epoch",
        "--save_weights_hash",
        "--log_level", "info",  # the accelerator state, logged at info
        by_path=True,
    )  # fmt: skip

    same_weights_in_both_processes(output_dir)
    assert "DistributedType.MULTI_CPU" in result.stderr and "Num processes: 2" in result.stderr
    assert read_json(output_dir / "trainer_state.json")["completed_steps"] == 8
    assert [entry["epoch"] for entry in read_json(output_dir / "val_metrics.json")["history"]] == [0, 1]

    # Stage 2 trained the top backbone block only; the rest of the backbone kept the weights of stage 1.
    stage1 = read_weights(output_dir / "checkpoints" / "step_4" / "model.safetensors")
    stage2 = read_weights(output_dir / "checkpoints" / "step_8" / "model.safetensors")
    model, _ = make_tiny(["a caption"])
    top_block = {id(param) for param in model.encoder.blocks()[-1].parameters()}
    top_names = {
        f"encoder.backbone.{name}" for name, p in model.encoder.backbone.named_parameters() if id(p) in top_block
    }
    backbone_params = {f"encoder.backbone.{name}" for name, _ in model.encoder.backbone.named_parameters()}
    assert top_names and backbone_params - top_names
    for name in backbone_params:
        changed = not torch.equal(stage1[name], stage2[name])
        assert changed == (name in top_names), name


def test_two_cpu_processes_run_self_critical_training_in_step(tmp_path):
    # Each process samples and rewards its own images (only local references are needed); the gradients are averaged
    # as in cross-entropy training, so both processes end with the same weights.
    output_dir = tmp_path / "run"
    launch_two_processes(
        "--output_dir", output_dir,
        "--max_train_samples", 8,  # 32 pairs: 2 batches of 8 per process and epoch
        "--num_train_epochs", 2,
        "--no_validation",
        "--scst_after", 1,
        "--scst_samples", 2,
        "--scst_max_new_tokens", 6,
        "--feature_cache", tmp_path / "cache",
        "--save_weights_hash",
    )  # fmt: skip

    log = same_weights_in_both_processes(output_dir)
    assert [("scst_reward" in entry) for entry in log] == [entry["epoch"] == 1 for entry in log]
    assert any(entry["epoch"] == 1 for entry in log)


def test_two_cpu_processes_train_hard_attention_in_step(tmp_path):
    # Each process samples its own locations; the reward baseline is averaged over both (a collective per batch), so
    # both use the same baseline, and the averaged gradients keep the weights identical.
    output_dir = tmp_path / "run"
    launch_two_processes(
        "--output_dir", output_dir,
        "--attention_type", "hard",
        "--max_train_samples", 8,  # 32 pairs: 2 batches of 8 per process and epoch
        "--num_train_epochs", 2,
        "--gradient_accumulation_steps", 2,
        "--no_validation",
        "--feature_cache", tmp_path / "cache",
        "--save_weights_hash",
    )  # fmt: skip
    log = same_weights_in_both_processes(output_dir)
    assert len(log) == 2 and all("hard_baseline" in entry and "hard_reward" in entry for entry in log)
