"""`python -m training.evaluate_captioner` end to end on a tiny saved model over coco-mini test, plus its batched
generation helper."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoModel, AutoProcessor

from show_attend_tell import caption_images
from show_attend_tell.evaluation import evaluate_captioner
from show_attend_tell.metrics import METRIC_NAMES, compute_caption_metrics
from tests.conftest import FLICKR8K_MINI, REPO_ROOT, read_metadata
from training.evaluate_captioner import effective_decoding, main

NUM_SAMPLES = 8


@pytest.fixture(scope="module")
def people_model_dir(tiny_model_dir, tmp_path_factory):
    """The tiny saved model, biased to say "people" at every step: its captions score above zero and name people."""
    model = AutoModel.from_pretrained(tiny_model_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(tiny_model_dir, trust_remote_code=True)
    with torch.no_grad():
        model.get_output_embeddings().bias[processor.tokenizer.convert_tokens_to_ids("people")] = 100.0
    directory = tmp_path_factory.mktemp("people_model")
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def coco_run(people_model_dir, coco_mini, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("eval_coco")
    argv = ["--model", str(people_model_dir), "--dataset_name", str(coco_mini), "--split", "test"]
    argv += ["--num_beams", "2", "--length_penalty", "0.8", "--max_new_tokens", "4", "--batch_size", "3"]
    argv += ["--max_samples", str(NUM_SAMPLES), "--output_dir", str(output_dir), "--no_progress"]
    report = main(argv)
    return report, output_dir


def test_writes_predictions_for_the_first_images(coco_run, coco_mini):
    _, output_dir = coco_run
    predictions = json.loads((output_dir / "predictions.json").read_text())
    rows = read_metadata(coco_mini / "test")[:NUM_SAMPLES]
    assert [p["image_id"] for p in predictions] == [row["source_id"] for row in rows]
    assert all(set(p) == {"image_id", "caption"} for p in predictions)
    assert all(p["caption"] == "people people people people" for p in predictions)


def test_metrics_json_has_the_documented_shape(coco_run, coco_mini, people_model_dir):
    report, output_dir = coco_run
    saved = json.loads((output_dir / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(report))
    assert list(saved) == ["dataset", "split", "num_images", "decoding", "metrics", "grounding", "model"]
    assert saved["dataset"] == str(coco_mini) and saved["split"] == "test" and saved["num_images"] == NUM_SAMPLES
    assert saved["decoding"] == {"num_beams": 2, "length_penalty": 0.8, "max_new_tokens": 4, "no_repeat_ngram_size": 0}
    assert saved["model"] == str(people_model_dir)
    assert list(saved["metrics"]) == list(METRIC_NAMES)
    assert saved["metrics"]["BLEU-1"] > 0.0 and saved["metrics"]["ROUGE-L"] > 0.0


def test_metrics_are_the_metric_module_scores_of_the_written_predictions(coco_run, coco_mini):
    report, output_dir = coco_run
    predictions = json.loads((output_dir / "predictions.json").read_text())
    references = {row["source_id"]: row["captions"] for row in read_metadata(coco_mini / "test")[:NUM_SAMPLES]}
    expected = compute_caption_metrics({p["image_id"]: p["caption"] for p in predictions}, references)
    assert report["metrics"] == expected


def test_grounding_scores_every_people_word_on_photos_with_people(coco_run, coco_mini):
    report, _ = coco_run
    grounding = report["grounding"]
    rows = read_metadata(coco_mini / "test")[:NUM_SAMPLES]
    with_people = [row for row in rows if "person" in row["objects"]["category"]]
    assert with_people
    # "people people people people", scored at the choosing step's map: the first word has no step before it
    assert grounding["overall"]["words"] == 3 * len(with_people)
    assert list(grounding["per_category"]) == ["person"]
    for rates in (grounding["overall"], grounding["per_category"]["person"]):
        assert set(rates) == {"hit_rate", "center_baseline", "random_baseline", "center_margin_se", "words"}
        assert all(0.0 <= rates[key] <= 1.0 for key in ("hit_rate", "center_baseline", "random_baseline"))


def test_markdown_table_lists_the_metrics_and_grounding(coco_run):
    report, output_dir = coco_run
    markdown = (output_dir / "metrics.md").read_text()
    assert "| BLEU-1 | BLEU-2 | BLEU-3 | BLEU-4 | METEOR | ROUGE-L | CIDEr |" in markdown
    assert f"| {100 * report['metrics']['BLEU-1']:.1f} |" in markdown
    words = report["grounding"]["overall"]["words"]
    assert f"| **overall** | {words} |" in markdown and "| person |" in markdown


def test_data_without_boxes_gives_null_grounding(people_model_dir, tmp_path):
    argv = ["--model", str(people_model_dir), "--dataset_name", str(FLICKR8K_MINI), "--split", "test"]
    argv += ["--num_beams", "1", "--max_new_tokens", "3", "--max_samples", "3", "--output_dir", str(tmp_path)]
    report = main([*argv, "--no_progress"])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert report["grounding"] is None and saved["grounding"] is None and saved["num_images"] == 3
    assert "grounding" not in (tmp_path / "metrics.md").read_text()


def test_built_in_shapes_set_is_the_default_data(people_model_dir, tmp_path):
    argv = ["--model", str(people_model_dir), "--split", "test", "--num_beams", "1", "--max_new_tokens", "3"]
    report = main([*argv, "--max_samples", "4", "--output_dir", str(tmp_path), "--no_progress"])
    assert report["dataset"] == "built-in shapes" and report["num_images"] == 4
    assert json.loads((tmp_path / "metrics.json").read_text())["dataset"] == "built-in shapes"


def test_caption_images_batches_and_settings(tiny_model_dir, coco_mini):
    model = AutoModel.from_pretrained(tiny_model_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(tiny_model_dir, trust_remote_code=True)
    paths = [row["path"] for row in read_metadata(coco_mini / "test")[:3]]
    batched = caption_images(model, processor, paths, batch_size=2, max_new_tokens=5)
    one_by_one = caption_images(model, processor, paths, batch_size=1, max_new_tokens=5)
    assert [item.text for item in one_by_one] == [item.text for item in batched]
    for item, single, path in zip(batched, one_by_one, paths, strict=True):
        assert item.text and item.words == item.text.split()
        assert item.attention.shape == (len(item.words), 2, 2) and item.grid_size == (2, 2)
        np.testing.assert_allclose(item.attention, single.attention, atol=1e-5)
        np.testing.assert_allclose(item.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)
        with Image.open(path) as image:
            assert item.image.size == image.size
    with pytest.raises(ValueError, match="batch_size: expected a positive integer"):
        caption_images(model, processor, paths, batch_size=0)
    with pytest.raises(ValueError, match="Image file not found: missing.jpg"):
        caption_images(model, processor, ["missing.jpg"])


def test_evaluation_scores_one_caption_per_image_and_records_the_saved_decoding(tiny_model_dir, coco_mini, tmp_path):
    model = AutoModel.from_pretrained(tiny_model_dir, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(tiny_model_dir, trust_remote_code=True)
    with pytest.raises(ValueError, match="num_return_sequences must be 1"):
        evaluate_captioner(model, processor, None, num_beams=2, num_return_sequences=2)
    assert effective_decoding(model, {"num_beams": 4, "max_new_tokens": None, "no_repeat_ngram_size": 3}) == {
        "num_beams": 4,
        "length_penalty": model.generation_config.length_penalty,
        "max_new_tokens": model.generation_config.max_new_tokens,
        "no_repeat_ngram_size": 3,
    }


def test_bad_arguments_exit_with_clear_messages(capsys):
    with pytest.raises(SystemExit):
        main(["--model", "m", "--dataset_name", "d", "--output_dir", "o", "--batch_size", "0"])
    assert "--batch_size must be a positive integer, got 0" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--model", "m", "--dataset_name", "d", "--output_dir", "o", "--no_repeat_ngram_size", "-1"])
    assert "--no_repeat_ngram_size must be 0 (off) or more, got -1" in capsys.readouterr().err


def test_script_runs_as_a_module_and_names_a_bad_model_path(tmp_path):
    """`python -m training.evaluate_captioner` from the repository root must not shadow the `evaluate` library (the
    root is first on sys.path, and no module there is named `evaluate`); a bad --model gives a clear error."""
    missing = tmp_path / "no_such_model"
    command = [sys.executable, "-m", "training.evaluate_captioner", "--model", str(missing)]
    command += ["--dataset_name", "unused", "--output_dir", str(tmp_path / "out")]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=300)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == f"--model {missing}: model folder not found"
    assert "Traceback" not in result.stderr
