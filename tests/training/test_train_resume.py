"""A run stopped at a checkpoint and resumed from it ends with exactly the weights of an uninterrupted run."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState, GradientState

from tests.training.train_utils import TINY_ARGS, exact_resume_args, read_json, read_weights, run_training
from training.checkpointing import TrainerState, checkpoint_problem, checkpoint_steps, save_checkpoint


def test_resumed_run_matches_uninterrupted_run(tmp_path):
    # 12 scenes x 4 captions = 48 pairs = 6 batches of 8 = 3 optimizer steps per epoch (2 batches accumulated):
    # step 4 lies inside the second epoch, so resuming must skip its first 2 batches and restore RNG (dropout).
    common = exact_resume_args(tmp_path, "--dropout", 0.5)
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
    # Wall time carries over: the resumed run adds its epochs to those of the first session.
    before = read_json(full / "checkpoints" / "step_4" / "trainer_state.json")["train_runtime_s"]
    assert 0 < before < read_json(resumed / "trainer_state.json")["train_runtime_s"]
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


# --------------------------------------------------------------------------------------------------------------------
# An output folder with another run's work; damaged checkpoints
# --------------------------------------------------------------------------------------------------------------------

QUICK = [*TINY_ARGS, "--max_train_samples", 8, "--no_validation", "--checkpoints_total_limit", 10]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {path.relative_to(folder).as_posix(): path.read_bytes() for path in folder.rglob("*") if path.is_file()}


def test_a_new_run_never_takes_or_prunes_another_runs_work(tmp_path):
    output_dir = tmp_path / "run"
    # A finished run: checkpoints step_2 and step_4, its model and trainer state.
    run_training(*QUICK, "--output_dir", output_dir, "--max_train_steps", 4, "--checkpointing_steps", 2)
    finished = _snapshot(output_dir)
    first_run = read_json(output_dir / "trainer_state.json")["run_id"]

    # Another run (other settings) stops before training, whether it starts afresh or asks to resume.
    new_run = [*QUICK, "--output_dir", output_dir, "--learning_rate", 1e-3, "--checkpointing_steps", 1]
    with pytest.raises(SystemExit) as refused:
        run_training(*new_run, "--max_train_steps", 2)
    assert f"--output_dir {output_dir} holds the work of another run" in str(refused.value)
    assert "checkpoints/step_2, checkpoints/step_4, trainer_state.json" in str(refused.value)
    assert "--overwrite_output_dir" in str(refused.value)
    with pytest.raises(SystemExit) as refused:
        run_training(*new_run, "--max_train_steps", 2, "--resume_from_checkpoint")
    assert "no checkpoint in" in str(refused.value) and "--learning_rate: 0.002 -> 0.001" in str(refused.value)
    assert _snapshot(output_dir) == finished

    # With --overwrite_output_dir the new run replaces it; killed after step 2 and relaunched, it resumes its own work.
    run_training(*new_run, "--max_train_steps", 2, "--overwrite_output_dir")
    assert sorted(path.name for path in (output_dir / "checkpoints").iterdir()) == ["step_1", "step_2"]
    second_run = read_json(output_dir / "checkpoints" / "step_2" / "trainer_state.json")["run_id"]
    assert second_run != first_run
    summary = run_training(*new_run, "--max_train_steps", 3, "--resume_from_checkpoint")
    assert summary["completed_steps"] == 3
    state = read_json(output_dir / "trainer_state.json")
    assert state["run_id"] == second_run and [entry["step"] for entry in state["log_history"]] == [1, 2, 3]


@pytest.fixture
def accelerator():
    """A CPU Accelerator holding a tiny prepared model, for checkpoint saving without a training run."""
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()
    accelerator = Accelerator(cpu=True)
    accelerator.prepare(torch.nn.Linear(2, 2))
    yield accelerator
    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


def test_pruning_deletes_only_this_runs_checkpoints(tmp_path, accelerator):
    save_checkpoint(accelerator, tmp_path, TrainerState(completed_steps=1, run_id="another run"))
    state = TrainerState(run_id="this run")
    for step in (2, 3, 4):
        state.completed_steps = step
        save_checkpoint(accelerator, tmp_path, state, total_limit=2)
    assert sorted(path.name for path in (tmp_path / "checkpoints").iterdir()) == ["step_1", "step_3", "step_4"]


def test_a_checkpoint_is_complete_or_absent(tmp_path, accelerator, monkeypatch):
    def killed(directory):  # the process dies while writing the weights
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "model.safetensors").write_bytes(b"half a tensor")
        raise KeyboardInterrupt

    monkeypatch.setattr(accelerator, "save_state", killed)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(accelerator, tmp_path, TrainerState(completed_steps=5, run_id="run"))
    assert checkpoint_steps(tmp_path) == {} and not (tmp_path / "checkpoints" / "step_5").exists()


def test_trainer_state_is_replaced_atomically(tmp_path, monkeypatch):
    TrainerState(completed_steps=2).save(tmp_path)
    write_text = Path.write_text

    def disk_full(self, text, *args, **kwargs):
        write_text(self, text[: len(text) // 2], *args, **kwargs)
        raise OSError("No space left on device")

    monkeypatch.setattr(Path, "write_text", disk_full)
    with pytest.raises(OSError):
        TrainerState(completed_steps=4).save(tmp_path)
    monkeypatch.undo()
    assert TrainerState.load(tmp_path).completed_steps == 2


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("damaged", ["model.safetensors", "trainer_state.json"])
def test_resume_falls_back_past_a_damaged_newest_checkpoint(tmp_path, caplog, damaged):
    output_dir = tmp_path / "run"
    common = [*QUICK, "--output_dir", output_dir, "--max_train_steps", 4, "--checkpointing_steps", 2]
    run_training(*common)
    expected = read_weights(output_dir / "model.safetensors")
    _truncate(output_dir / "checkpoints" / "step_4" / damaged)

    with caplog.at_level(logging.WARNING, logger="training.checkpointing"):
        summary = run_training(*common, "--resume_from_checkpoint")
    assert f"Skipping checkpoint {output_dir / 'checkpoints' / 'step_4'}: " in caplog.text
    assert ("is damaged" if damaged == "model.safetensors" else "is not valid JSON") in caplog.text
    assert summary["completed_steps"] == 4
    log = read_json(output_dir / "trainer_state.json")["log_history"]
    assert [entry["step"] for entry in log] == [1, 2, 3, 4]  # steps 3 and 4 trained again from step_2
    actual = read_weights(output_dir / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    assert checkpoint_problem(output_dir / "checkpoints" / "step_4") == ""  # saved again, intact

    # A damaged checkpoint named explicitly is an error, never a silent fallback.
    _truncate(output_dir / "checkpoints" / "step_4" / damaged)
    with pytest.raises(SystemExit, match=rf"--resume_from_checkpoint {re.escape(str(output_dir))}.*step_4: cannot"):
        run_training(*common, "--resume_from_checkpoint", output_dir / "checkpoints" / "step_4")
