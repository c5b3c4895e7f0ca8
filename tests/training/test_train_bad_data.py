"""Bad training data stops the script with a clear error before any training, or is skipped and counted."""

from __future__ import annotations

import json
import logging

import pytest

from tests.training.train_utils import TINY_ARGS, run_training
from training.shapes import make_shapes_dataset


def write_imagefolder(root, problem: str | None) -> None:
    """train/ (6 scenes, one of them bad when `problem` is set) and validation/ (2 scenes) as an imagefolder."""
    for split, count, seed in (("train", 6, 0), ("validation", 2, 1)):
        folder = root / split
        folder.mkdir(parents=True)
        rows = []
        for index, scene in enumerate(make_shapes_dataset(count, seed=seed)):
            name = f"scene_{index}.png"
            scene["image"].save(folder / name)
            rows.append({"file_name": name, "captions": scene["captions"]})
        if split == "train" and problem == "corrupt image":
            (folder / "scene_3.png").write_bytes(b"this is not a png")
        elif split == "train" and problem == "empty captions":
            rows[3]["captions"] = []
        elif split == "train" and problem == "number caption":
            rows[3]["captions"] = [42, *rows[3]["captions"]]
        (folder / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("corrupt image", r"scene_3\.png.*not a readable image"),
        ("empty captions", r"row 3.*non-empty list"),
        ("number caption", r"\[train\] row 3 .*scene_3\.png.*metadata\.jsonl line 4\): .*must be a string, got int 42"),
    ],
)
def test_bad_example_stops_before_training(tmp_path, problem, message):
    write_imagefolder(tmp_path / "data", problem)
    output_dir = tmp_path / "run"
    with pytest.raises(ValueError, match=message) as error:
        run_training(
            *TINY_ARGS, "--dataset_name", tmp_path / "data", "--output_dir", output_dir, "--max_train_steps", 2
        )
    assert "--skip_bad_examples" in str(error.value)
    assert not (output_dir / "checkpoints").exists() and not (output_dir / "model.safetensors").exists()


def test_skip_bad_examples_trains_on_the_rest_and_reports_the_count(tmp_path, caplog):
    write_imagefolder(tmp_path / "data", "corrupt image")
    output_dir = tmp_path / "run"
    with caplog.at_level(logging.INFO):
        run_training(
            *TINY_ARGS,
            "--dataset_name", tmp_path / "data",
            "--output_dir", output_dir,
            "--skip_bad_examples",
            "--max_train_steps", 2,
            "--no_validation",
            "--log_level", "info",  # the count of images is an info line
        )  # fmt: skip
    assert "Skipped 1 bad example(s) of 6" in caplog.text and "scene_3.png" in caplog.text
    assert (output_dir / "model.safetensors").is_file()
    assert "5 training images (20 captions)" in caplog.text
    assert json.loads((output_dir / "trainer_state.json").read_text())["completed_steps"] == 2
