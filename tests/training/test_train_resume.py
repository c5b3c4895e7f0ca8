"""A run stopped at a checkpoint and resumed from it ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import torch

from tests.training.train_utils import TINY_ARGS, read_json, read_weights, run_training


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    # 12 scenes x 4 captions = 48 pairs = 6 batches of 8 = 3 optimizer steps per epoch (2 batches accumulated):
    # step 4 lies inside the second epoch, so resuming must skip its first 2 batches and restore RNG (dropout).
    common = [
        *TINY_ARGS,
        "--max_train_samples", 12,
        "--gradient_accumulation_steps", 2,
        "--dropout", 0.5,
        "--max_train_steps", 8,
        "--checkpointing_steps", 2,
        "--checkpoints_total_limit", 10,
        "--no_validation",
        "--feature_cache", tmp_path / "cache",
    ]  # fmt: skip
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_training(*common, "--output_dir", full)
    run_training(*common, "--output_dir", resumed, "--resume_from_checkpoint", full / "checkpoints" / "step_4")

    # The resumed run really started at step 4: it only wrote the later checkpoints.
    assert sorted(path.name for path in (full / "checkpoints").iterdir()) == ["step_2", "step_4", "step_6", "step_8"]
    assert sorted(path.name for path in (resumed / "checkpoints").iterdir()) == ["step_6", "step_8"]

    full_log = read_json(full / "trainer_state.json")["log_history"]
    resumed_log = read_json(resumed / "trainer_state.json")["log_history"]
    assert [entry["step"] for entry in resumed_log] == list(range(1, 9))
    for expected, actual in zip(full_log, resumed_log, strict=True):
        assert actual["loss"] == expected["loss"] and actual["learning_rate"] == expected["learning_rate"]

    expected, actual = read_weights(full / "model.safetensors"), read_weights(resumed / "model.safetensors")
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    start = read_weights(full / "checkpoints" / "step_4" / "model.safetensors")
    assert not torch.equal(start["lm_head.weight"], expected["lm_head.weight"])  # steps 5-8 did change the model


def test_resume_latest_continues_from_the_newest_checkpoint(tmp_path):
    common = [*TINY_ARGS, "--max_train_samples", 8, "--no_validation", "--checkpointing_steps", 1]
    output_dir = tmp_path / "run"
    run_training(*common, "--output_dir", output_dir, "--max_train_steps", 2)
    # The flag alone means "latest"; training continues to the new step budget.
    summary = run_training(*common, "--output_dir", output_dir, "--max_train_steps", 4, "--resume_from_checkpoint")
    assert summary["completed_steps"] == 4
    log = read_json(output_dir / "trainer_state.json")["log_history"]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]
