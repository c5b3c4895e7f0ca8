"""Training-state checkpoints: `accelerator.save_state` folders `OUTPUT_DIR/checkpoints/step_<N>`, each with a
`trainer_state.json` (step, epoch, validation history, best metric, and which run wrote it), and finding the one to
resume from.

A run is identified by `run_id`, drawn when it starts from scratch and kept by every resumption; its trainer states
also record the settings that must not change for an exact resume (`resume_settings`). With these:

- a run claims `OUTPUT_DIR` only when no other run's work is there (`other_runs_work`); `--overwrite_output_dir`
  deletes that work first, and without it the run stops and says so, so neither run's work is lost silently;
- checkpoint pruning deletes checkpoints of the current run only;
- `--resume_from_checkpoint` takes the newest checkpoint that is intact and was written with the same settings,
  skipping (and logging) damaged ones, and stops with the reasons when none fits.

Checkpoints are written into a `.partial-step_<N>` folder and renamed when complete, so a run killed while saving
leaves no `step_<N>` folder that looks finished but is not.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE = "trainer_state.json"
PARTIAL_PREFIX = ".partial-"
UNREADABLE = "(unreadable)"  # the run of a missing or damaged trainer state
_STEP_DIR = re.compile(r"step_(\d+)")
# Options that may change between a run and its resumption: where things go, how much to train, logging and
# publishing, and how data and validation batches are read (none of them changes the weights at a given step).
RESUMABLE_CHANGES = frozenset(
    {
        "config_file",
        "output_dir",
        "overwrite_output_dir",
        "resume_from_checkpoint",
        "num_train_epochs",
        "max_train_steps",
        "cpu",
        "cache_dir",
        "feature_cache",
        "dataloader_num_workers",
        "per_device_eval_batch_size",
        "skip_bad_examples",
        "checkpointing_steps",
        "checkpoints_total_limit",
        "logging_steps",
        "log_level",
        "with_tracking",
        "report_to",
        "push_to_hub",
        "hub_model_id",
        "hub_private_repo",
        "save_weights_hash",
    }
)


@dataclass
class TrainerState:
    """What the loop needs besides the weights, optimizer, scheduler and RNG states to continue exactly."""

    completed_steps: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)  # training loss and learning rate
    history: list[dict[str, Any]] = field(default_factory=list)  # validation metrics, one entry per epoch
    best_metric: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0
    # Wall time of the finished epochs (training and validation; not data loading or the feature cache), summed over
    # the sessions of a resumed run.
    train_runtime_s: float = 0.0
    run_id: str | None = None  # the run that wrote this state (None: written before runs had ids)
    settings: dict[str, Any] = field(default_factory=dict)  # `resume_settings` of that run

    def save(self, directory: str | Path) -> None:
        """Write `directory/trainer_state.json` atomically (a temporary file renamed over the old one)."""
        path = Path(directory) / TRAINER_STATE
        temporary = path.with_name(f"{PARTIAL_PREFIX}{TRAINER_STATE}")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n")
        os.replace(temporary, path)

    @classmethod
    def load(cls, directory: str | Path) -> TrainerState:
        """The state in `directory`; `ValueError` naming the file when it is missing, not JSON or not a state."""
        path = Path(directory) / TRAINER_STATE
        if not path.is_file():
            raise ValueError(f"{directory} is not a checkpoint of training/train.py (no {TRAINER_STATE})")
        try:
            return cls(**json.loads(path.read_text()))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{path} is not valid JSON ({error})") from None
        except TypeError as error:  # a JSON value that is not an object, or unknown fields
            raise ValueError(f"{path} is not a trainer state of training/train.py ({error})") from None


def new_state(settings: dict[str, Any]) -> TrainerState:
    """The state of a run starting from scratch, under a fresh run id. Each process draws its own id; only the main
    process writes trainer states, so its id is the one recorded."""
    return TrainerState(run_id=uuid.uuid4().hex, settings=settings)


def resume_settings(args: Any) -> dict[str, Any]:
    """The options (parsed arguments) that a resumption must share with its run, as JSON values."""
    values = {key: value for key, value in sorted(vars(args).items()) if key not in RESUMABLE_CHANGES}
    return json.loads(json.dumps(values, default=_json_value))


def _json_value(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else str(value)  # e.g. SchedulerType.COSINE -> "cosine"


def checkpoint_steps(output_dir: str | Path) -> dict[int, Path]:
    """Checkpoint folders under `output_dir/checkpoints`, by step (not checked: see `checkpoint_problem`)."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = {}
    for path in root.glob("step_*") if root.is_dir() else []:
        match = _STEP_DIR.fullmatch(path.name)
        if match and path.is_dir():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def checkpoint_problem(path: Path) -> str:
    """Why `path` cannot be resumed from ("" if it can): its trainer state must parse and its safetensors files (the
    model weights) must open with complete headers."""
    try:
        TrainerState.load(path)
    except ValueError as error:
        return str(error)
    weights = sorted(path.glob("*.safetensors"))
    if not weights:
        return f"no *.safetensors weights in {path}"
    for file in weights:
        try:
            with safe_open(str(file), framework="pt"):
                pass
        except (SafetensorError, OSError) as error:
            return f"{file} is damaged ({error})"
    return ""


def settings_difference(expected: dict[str, Any], found: dict[str, Any]) -> str:
    """The options whose values differ, as "--name: the checkpoint's value -> this command's value" ("" if none)."""
    names = sorted(name for name in expected.keys() | found.keys() if expected.get(name) != found.get(name))
    return ", ".join(f"--{name}: {found.get(name)!r} -> {expected.get(name)!r}" for name in names)


def resolve_checkpoint(
    resume_from_checkpoint: str | None, output_dir: str | Path, settings: dict[str, Any], overwrite: bool = False
) -> tuple[Path | None, TrainerState]:
    """The checkpoint to resume from and its state, or `(None, new_state(settings))` for a run from scratch.

    `resume_from_checkpoint` is a folder (which must be intact and written with `settings`, else `SystemExit`
    naming why) or "latest": the newest intact checkpoint of `output_dir` written with `settings`; damaged ones are
    skipped with a warning. "latest" starts from scratch when `output_dir` has no checkpoint, or when none fits and
    `overwrite` is set (`check_output_dir` then finds the other runs' work); otherwise it stops naming the reasons."""
    if resume_from_checkpoint is None:
        return None, new_state(settings)
    if resume_from_checkpoint != "latest":
        path = Path(resume_from_checkpoint)
        reason = _unresumable(path, settings)
        if reason:
            raise SystemExit(f"--resume_from_checkpoint {path}: cannot resume from it: {reason}")
        return path, TrainerState.load(path)
    reasons = []
    for path in reversed(checkpoint_steps(output_dir).values()):
        reason = _unresumable(path, settings)
        if not reason:
            return path, TrainerState.load(path)
        logger.warning(f"Skipping checkpoint {path}: {reason}")
        reasons.append(f"{path.name}: {reason}")
    if reasons and not overwrite:
        raise SystemExit(
            f"--resume_from_checkpoint: no checkpoint in {Path(output_dir) / CHECKPOINTS_DIR} can be resumed by this "
            "command:\n  " + "\n  ".join(reasons) + "\nResume with the options of that run, start a new run in "
            "another --output_dir, or pass --overwrite_output_dir to delete that run's work and start a new one here."
        )
    logger.info(f"No checkpoint to resume in {Path(output_dir) / CHECKPOINTS_DIR}: training from scratch")
    return None, new_state(settings)


def _unresumable(path: Path, settings: dict[str, Any]) -> str:
    """Why a run with `settings` cannot resume from `path` ("" if it can): damaged, or written with other settings."""
    problem = checkpoint_problem(path)
    if problem:
        return problem
    state = TrainerState.load(path)
    if state.run_id is None:
        return "written without its settings (by an older version), so an exact resume cannot be checked"
    difference = settings_difference(settings, state.settings)
    return f"written with other settings, training would not continue exactly ({difference})" if difference else ""


def other_runs_work(output_dir: str | Path, run_id: str) -> list[Path]:
    """Checkpoint folders, and `output_dir` itself for its final trainer state, that another run wrote (a run of an
    older version without an id included). Damaged states name no run: they are neither claimed nor pruned."""
    candidates = [*checkpoint_steps(output_dir).values(), Path(output_dir)]
    return [path for path in candidates if _recorded_run(path) not in (run_id, UNREADABLE)]


def _recorded_run(directory: Path) -> str | None:
    """The run id recorded in `directory`'s trainer state (`UNREADABLE` when there is none or it is damaged)."""
    try:
        return TrainerState.load(directory).run_id
    except ValueError:
        return UNREADABLE


def check_output_dir(output_dir: str | Path, run_id: str, overwrite: bool) -> list[Path]:
    """Another run's work in `output_dir`, which this run may delete (`overwrite`); `SystemExit` naming the folder,
    what is there and the options when there is some and `overwrite` is not set."""
    found = other_runs_work(output_dir, run_id)
    if found and not overwrite:
        names = [TRAINER_STATE if path == Path(output_dir) else f"{CHECKPOINTS_DIR}/{path.name}" for path in found]
        raise SystemExit(
            f"--output_dir {output_dir} holds the work of another run ({', '.join(names)}). Resume that run with "
            "--resume_from_checkpoint and its options, choose another --output_dir, or pass --overwrite_output_dir "
            "to delete that work and start this run there."
        )
    return found


def delete_other_runs_work(output_dir: str | Path, found: list[Path]) -> None:
    """Delete what `check_output_dir` found (with --overwrite_output_dir): those checkpoints and trainer state."""
    for path in found:
        if path == Path(output_dir):
            (path / TRAINER_STATE).unlink()
        else:
            shutil.rmtree(path)
    logger.warning(f"--overwrite_output_dir: deleted another run's work in {output_dir}: {[str(p) for p in found]}")


def save_checkpoint(accelerator, output_dir: str | Path, state: TrainerState, total_limit: int | None = None) -> Path:
    """`accelerator.save_state` plus the trainer state into `output_dir/checkpoints/step_<N>`, written into a partial
    folder first and renamed when complete; keeps the newest `total_limit` checkpoints of this run."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    directory = root / f"step_{state.completed_steps}"
    partial = root / f"{PARTIAL_PREFIX}{directory.name}"
    if accelerator.is_main_process:
        shutil.rmtree(partial, ignore_errors=True)  # left by a run killed while saving: never a checkpoint
    accelerator.wait_for_everyone()
    accelerator.save_state(str(partial))
    accelerator.wait_for_everyone()  # every process has written its part
    if accelerator.is_main_process:
        state.save(partial)
        _replace_folder(partial, directory)
        if total_limit is not None:
            own = [path for path in checkpoint_steps(output_dir).values() if _recorded_run(path) == state.run_id]
            for path in own[:-total_limit]:
                shutil.rmtree(path, ignore_errors=True)
    accelerator.wait_for_everyone()
    return directory


def _replace_folder(source: Path, target: Path) -> None:
    """Rename `source` to `target`; an older `target` (the same step saved again after a resume) is moved aside
    first and deleted only once the new one is in place."""
    old = target.with_name(f"{PARTIAL_PREFIX}old-{target.name}")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old, ignore_errors=True)


__all__ = [
    "CHECKPOINTS_DIR",
    "TrainerState",
    "check_output_dir",
    "checkpoint_problem",
    "checkpoint_steps",
    "delete_other_runs_work",
    "resolve_checkpoint",
    "resume_settings",
    "save_checkpoint",
]
