"""The one evaluation (`show_attend_tell.evaluation`) and the one reporting module (`show_attend_tell.reporting`)."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from PIL import Image

from show_attend_tell import Caption
from show_attend_tell.evaluation import evaluate_captioner, score_captions
from show_attend_tell.grounding import COCO_SCORERS
from show_attend_tell.metrics import compute_caption_metrics
from show_attend_tell.reporting import markdown_table, mean_spread, metrics_markdown, results_section
from tests.conftest import make_tiny, read_metadata


@pytest.fixture(scope="module")
def man_captioner(coco_train_rows):
    """A tiny random model that says "man" at every step, so that every photo with a person is scored."""
    model, processor = make_tiny([caption for row in coco_train_rows for caption in row["captions"]])
    with torch.no_grad():
        model.get_output_embeddings().bias[processor.tokenizer.convert_tokens_to_ids("man")] = 100.0
    return model, processor


def as_dataset(rows: list[dict], boxes: bool = True) -> datasets.Dataset:
    columns = {
        "image": [str(row["path"]) for row in rows],
        "image_id": [row["file_name"] for row in rows],
        "captions": [row["captions"] for row in rows],
    }
    if boxes:
        columns["objects"] = [row["objects"] for row in rows]
    return datasets.Dataset.from_dict(columns).cast_column("image", datasets.Image())


def test_one_report_of_captions_metrics_grounding_and_focus(man_captioner, coco_mini):
    model, processor = man_captioner
    rows = [row for row in read_metadata(coco_mini / "test") if row["objects_annotated"]][:5]
    report = evaluate_captioner(model, processor, as_dataset(rows), batch_size=2, num_beams=1, max_new_tokens=3)

    assert report.num_images == 5 and [caption.text for caption in report.captions] == ["man man man"] * 5
    assert report.predictions == [{"image_id": row["file_name"], "caption": "man man man"} for row in rows]
    references = {row["file_name"]: row["captions"] for row in rows}
    assert report.metrics == compute_caption_metrics({key: "man man man" for key in references}, references)
    assert report.exact == 0.0
    with_person = [row for row in rows if "person" in row["objects"]["category"]]
    assert with_person and report.pointing["object word"]["overall"]["words"] == 3 * len(with_person)
    assert list(report.pointing) == list(COCO_SCORERS) and report.pointing["choosing step"] == report.grounding
    assert report.pointing["choosing step"]["overall"]["words"] == 2 * len(with_person)  # no step before word 1
    attention = report.attention
    assert attention["words"] == 15 and attention["uniform_peak"] == 1 / 4 and 0.0 <= attention["entropy_ratio"] <= 1
    assert set(report.scores()) == {"num_images", "exact", "metrics", "grounding", "pointing", "attention"}


def test_data_without_boxes_has_no_grounding(man_captioner, coco_mini):
    model, processor = man_captioner
    rows = read_metadata(coco_mini / "test")[:2]
    report = evaluate_captioner(model, processor, as_dataset(rows, boxes=False), num_beams=1, max_new_tokens=2)
    assert report.grounding is None and report.pointing == {} and report.attention["words"] == 4


def test_scoring_errors_name_the_input():
    words = ["a", "man"]
    caption = Caption("a man", words, np.full((2, 2, 2), 0.25, dtype=np.float32))
    row = {"image_id": "x", "captions": ["a man"], "objects": {"bbox": [[0, 0, 5, 5]], "category": ["person"]}}
    with pytest.raises(ValueError, match="one caption per row: got 2 captions for 1 rows"):
        score_captions([row], [caption, caption])
    with pytest.raises(ValueError, match="image 'x' has object boxes but its caption holds no image"):
        score_captions([row], [caption])
    scored = score_captions([row], [Caption("a man", words, caption.attention, Image.new("RGB", (10, 10)))])
    assert scored.exact == 1.0 and scored.grounding["overall"]["words"] == 1
    assert scored.grounding["overall"]["hit_rate"] == 1.0  # the peak cell's centre (2.5, 2.5) is in the box


def test_markdown_tables():
    table = markdown_table(["name", "value", "big"], [["a", 0.123456, 1234.5], ["b", 7, "n/a"]], align="lrr")
    assert table.splitlines() == [
        "| name | value | big |",
        "|---|---:|---:|",
        "| a | 0.123 | 1234 |",
        "| b | 7 | n/a |",
    ]
    with pytest.raises(ValueError, match="align must be one 'l' or 'r' per column \\(3 columns\\), got 'lr'"):
        markdown_table(["name", "value", "big"], [], align="lr")
    assert mean_spread([0.1, None, 0.2], scale=100) == "15.0 ± 7.1" and mean_spread([2.0], digits=3) == "2.000"
    assert mean_spread([None]) == "n/a"


def test_the_evaluation_page_and_results_sections():
    report = {"model": "m", "dataset": "d", "split": "test", "num_images": 2, "metrics": {"BLEU-4": 0.25}}
    report["decoding"] = {"num_beams": 3, "length_penalty": 1.0, "max_new_tokens": 30}
    report["grounding"] = {
        "overall": {"hit_rate": 0.5, "center_baseline": None, "random_baseline": 0.125, "words": 2},
        "per_category": {"dog": {"hit_rate": 0.5, "center_baseline": None, "random_baseline": 0.125, "words": 2}},
    }
    lines = metrics_markdown(report).splitlines()
    assert lines[4:7] == ["| BLEU-4 |", "|---:|", "| 25.0 |"]
    assert "at most 30 new tokens. Scores" in lines[2]
    report["decoding"]["no_repeat_ngram_size"] = 3
    assert "at most 30 new tokens, no repeated 3-grams. Scores" in metrics_markdown(report).splitlines()[2]
    assert "| **overall** | 2 | 50.0 | n/a | 12.5 |" in lines and "| dog | 2 | 50.0 | n/a | 12.5 |" in lines
    section = results_section("Speed", "| a |\n", quick=True)
    assert section.startswith("## Speed (--quick)\n\n") and section.endswith("\n\n| a |\n") and "CPU cores" in section
