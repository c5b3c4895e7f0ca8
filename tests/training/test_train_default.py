"""The README's main-job command, `python -m training.train --output_dir DIR` with no data set: it trains on the
built-in shapes scenes offline, and the model captions held-out scenes right, with attention on the named objects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from transformers import AutoModel, AutoProcessor

from show_attend_tell import caption_images
from show_attend_tell.grounding import attention_peak, point_in_boxes
from show_attend_tell.metrics import compute_caption_metrics
from tests.training.train_utils import REPO_ROOT, TRAIN_COMMAND, read_json
from training.data import load_caption_dataset
from training.shapes import SHAPES


def grid_chance(boxes, image_size, grid) -> float:
    """Share of region-grid cells whose centre lies in one of `boxes` (a uniformly random attention peak's hit rate)."""
    (rows, columns), (width, height) = grid, image_size
    centres = [((c + 0.5) * width / columns, (r + 0.5) * height / rows) for r in range(rows) for c in range(columns)]
    return sum(point_in_boxes(centre, boxes) for centre in centres) / len(centres)


def score_held_out_scenes(model_dir, num_scenes: int = 100) -> dict:
    """Caption quality and attention grounding of a trained model on held-out test scenes.

    For every generated "<colour> <shape>" naming an object of the scene: does the attention peak of the shape word
    (`shape_hits`), and of the whole phrase (colour + shape maps summed, `phrase_hits`) fall inside that object's box?
    `chance` is the hit rate of a uniformly random grid cell.
    """
    model = AutoModel.from_pretrained(model_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=True)
    scenes = load_caption_dataset(None, "test", shapes_num_images=num_scenes)
    generated = caption_images(model, processor, scenes["image"])
    rows = scenes.remove_columns("image").to_list()
    metrics = compute_caption_metrics(
        {row["image_id"]: item.text for row, item in zip(rows, generated, strict=True)},
        {row["image_id"]: row["captions"] for row in rows},
    )
    shape_hits, phrase_hits, chance, words = 0, 0, 0.0, 0
    for row, item in zip(rows, generated, strict=True):
        objects = row["objects"]
        for index in range(1, len(item.words)):
            shape, colour = item.words[index], item.words[index - 1]
            named = [
                (category, box_colour) == (shape, colour)
                for category, box_colour in zip(objects["category"], objects["color"], strict=True)
            ]
            boxes = [box for box, hit in zip(objects["bbox"], named, strict=True) if hit and shape in SHAPES]
            if not boxes:
                continue
            words += 1
            maps, size = item.attention, item.image.size
            shape_hits += point_in_boxes(attention_peak(maps[index], size), boxes)
            phrase = maps[index] + maps[index - 1]
            phrase_hits += point_in_boxes(attention_peak(phrase, size), boxes)
            chance += grid_chance(boxes, size, item.grid_size)
    return {
        "exact": sum(item.text in row["captions"] for row, item in zip(rows, generated, strict=True)) / len(rows),
        "metrics": metrics,
        "words": words,
        "shape_hits": shape_hits / max(words, 1),
        "phrase_hits": phrase_hits / max(words, 1),
        "chance": chance / max(words, 1),
    }


@pytest.mark.slow
def test_builtin_default_run(tmp_path):
    """Exactly the README command: about 2-3 minutes on one CPU thread (111-160 s measured), then 100 held-out
    scenes."""
    output_dir = tmp_path / "shapes"
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf_home"),  # a fresh feature cache
        "OMP_NUM_THREADS": "1",  # tiny LSTM steps: threads only contend when other jobs share the cores
    }
    command = [sys.executable, *TRAIN_COMMAND, "--output_dir", str(output_dir)]  # from the root, as in the README
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=1200)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (output_dir / "figures" / "attention_example.png").is_file()
    assert read_json(output_dir / "val_metrics.json")["best"]["CIDEr"] > 5.0

    scores = score_held_out_scenes(output_dir)
    # Measured over seeds 42 / 1 / 2: exact 0.37 / 0.46 / 0.56, BLEU-4 0.88 (seed 42), CIDEr 6.0 (seed 42); phrase hits
    # 0.28 / 0.24 / 0.19 and shape-word hits 0.06 / 0.16 / 0.08 against a chance of 0.0625. The shape word alone is not
    # reliably grounded (it is printed, not asserted); the colour + shape phrase is, at 3-4.5x chance.
    print("held-out scenes:", scores)
    assert scores["exact"] >= 0.3 and scores["metrics"]["BLEU-4"] >= 0.8 and scores["metrics"]["CIDEr"] >= 5.0
    assert scores["words"] >= 120
    assert scores["phrase_hits"] > 2.5 * scores["chance"]
