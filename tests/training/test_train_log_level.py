"""Training is quiet by default: one progress bar and one line per epoch (metrics, time, checkpoint); `--log_level info`
(or TRANSFORMERS_VERBOSITY=info) brings back the setup logs and Accelerate's lines for every checkpoint."""

from __future__ import annotations

import logging

import pytest

from tests.training.train_utils import TINY_ARGS, run_training
from training.args import parse_args

ACCELERATE_CHECKPOINT_LINES = ("Saving current state to", "Model weights saved in", "Random states saved in")
LEVELLED_LOGGERS = ("training", "show_attend_tell", "accelerate", "transformers", "datasets")  # --log_level sets them


def short_run(tmp_path, *extra) -> list[str]:
    """Two epochs of the built-in shapes data (4 steps each), a checkpoint per epoch, no validation."""
    run_training(
        *TINY_ARGS,
        "--max_train_samples", 8,
        "--num_train_epochs", 2,
        "--no_validation",
        "--checkpointing_steps", "epoch",
        "--feature_cache", tmp_path / "cache",
        "--output_dir", tmp_path / "run",
        *extra,
    )  # fmt: skip
    return [str(tmp_path / "run" / "checkpoints" / f"step_{step}") for step in (4, 8)]


def test_default_output_is_one_line_per_epoch_and_no_library_info(tmp_path, capsys, caplog, monkeypatch):
    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    caplog.set_level(logging.DEBUG)  # records that the loggers let through at all
    checkpoints = short_run(tmp_path)
    lines = capsys.readouterr().out.splitlines()
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 2, lines
    for epoch, (line, checkpoint) in enumerate(zip(epoch_lines, checkpoints, strict=True)):
        assert line.startswith(f"epoch {epoch} | train loss ") and line.endswith(f" s | checkpoint {checkpoint}")
    quieted = [record for record in caplog.records if record.name.split(".")[0] in LEVELLED_LOGGERS]
    assert [record.getMessage() for record in quieted if record.levelno < logging.WARNING] == []


def test_log_level_info_brings_back_setup_and_checkpoint_logs(tmp_path, capsys, caplog):
    caplog.set_level(logging.DEBUG)
    short_run(tmp_path, "--log_level", "info")
    assert len([line for line in capsys.readouterr().out.splitlines() if line.startswith("epoch ")]) == 2
    accelerate_lines = [record.getMessage() for record in caplog.records if record.name.startswith("accelerate")]
    for start in ACCELERATE_CHECKPOINT_LINES:
        assert len([line for line in accelerate_lines if start in line]) == 2, start  # one per checkpoint
    assert "training images" in caplog.text and "Running training" in caplog.text


@pytest.mark.parametrize(("verbosity", "expected"), [(None, "warning"), ("info", "info"), ("error", "error")])
def test_log_level_defaults_to_transformers_verbosity(monkeypatch, verbosity, expected):
    if verbosity is None:
        monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    else:
        monkeypatch.setenv("TRANSFORMERS_VERBOSITY", verbosity)
    assert parse_args(["--output_dir", "out"]).log_level == expected
    assert parse_args(["--output_dir", "out", "--log_level", "debug"]).log_level == "debug"
