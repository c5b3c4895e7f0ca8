"""Training-state checkpoints: `accelerator.save_state` folders `OUTPUT_DIR/checkpoints/step_<N>`, each with a
`trainer_state.json` (step, epoch, validation history, best metric), and finding the one to resume from."""

from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

CHECKPOINTS_DIR = "checkpoints"
TRAINER_STATE = "trainer_state.json"
_STEP_DIR = re.compile(r"step_(\d+)")


@dataclass
class TrainerState:
    """What the loop needs besides the weights, optimizer, scheduler and RNG states to continue exactly."""

    completed_steps: int = 0
    log_history: list[dict[str, Any]] = field(default_factory=list)  # training loss and learning rate
    history: list[dict[str, Any]] = field(default_factory=list)  # validation metrics, one entry per epoch
    best_metric: float | None = None
    best_epoch: int | None = None
    epochs_without_improvement: int = 0

    def save(self, directory: str | Path) -> None:
        (Path(directory) / TRAINER_STATE).write_text(json.dumps(asdict(self), indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> TrainerState:
        path = Path(directory) / TRAINER_STATE
        if not path.is_file():
            raise FileNotFoundError(f"{directory} is not a checkpoint of training/train.py (no {TRAINER_STATE})")
        return cls(**json.loads(path.read_text()))


def checkpoint_steps(output_dir: str | Path) -> dict[int, Path]:
    """Complete checkpoints under `output_dir/checkpoints`, by step."""
    root = Path(output_dir) / CHECKPOINTS_DIR
    found = {}
    for path in root.glob("step_*") if root.is_dir() else []:
        match = _STEP_DIR.fullmatch(path.name)
        if match and (path / TRAINER_STATE).is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def resolve_checkpoint(resume_from_checkpoint: str | None, output_dir: str | Path) -> Path | None:
    """The checkpoint folder to resume from: a path, or "latest" (None when `output_dir` has no checkpoint yet)."""
    if resume_from_checkpoint is None:
        return None
    if resume_from_checkpoint == "latest":
        checkpoints = checkpoint_steps(output_dir)
        if not checkpoints:
            logger.info(f"No checkpoint in {Path(output_dir) / CHECKPOINTS_DIR}: training from scratch")
            return None
        return checkpoints[max(checkpoints)]
    path = Path(resume_from_checkpoint)
    if not (path / TRAINER_STATE).is_file():
        raise SystemExit(f"--resume_from_checkpoint {path}: not a checkpoint folder of training/train.py")
    return path


def save_checkpoint(accelerator, output_dir: str | Path, state: TrainerState, total_limit: int | None = None) -> Path:
    """`accelerator.save_state` into `output_dir/checkpoints/step_<N>` plus the trainer state; keeps the newest
    `total_limit` checkpoints."""
    directory = Path(output_dir) / CHECKPOINTS_DIR / f"step_{state.completed_steps}"
    accelerator.save_state(str(directory))
    if accelerator.is_main_process:
        state.save(directory)
        if total_limit is not None:
            for path in list(checkpoint_steps(output_dir).values())[:-total_limit]:
                shutil.rmtree(path, ignore_errors=True)
    accelerator.wait_for_everyone()
    return directory


__all__ = ["CHECKPOINTS_DIR", "TrainerState", "checkpoint_steps", "resolve_checkpoint", "save_checkpoint"]
