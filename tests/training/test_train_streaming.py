"""`--streaming`: the training split is read as a stream (no length, no feature cache) for --max_train_steps."""

from __future__ import annotations

from tests.training.train_utils import TINY_ARGS, run_training


def test_streaming_run_trains_for_max_train_steps(tmp_path):
    output_dir = tmp_path / "stream"
    summary = run_training(
        *TINY_ARGS,
        "--streaming",
        "--max_train_samples", 6,  # 24 pairs: 3 batches per pass, so 5 steps need a second pass over the stream
        "--max_train_steps", 5,
        "--max_eval_samples", 2,
        "--output_dir", output_dir,
    )  # fmt: skip
    assert summary["completed_steps"] == 5 and len(summary["history"]) == 1
    assert (output_dir / "model.safetensors").is_file()
