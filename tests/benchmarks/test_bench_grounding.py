"""The grounding benchmark end to end on a tiny saved model: coco-mini photos with COCO boxes, and shapes scenes."""

from __future__ import annotations

import json
import sys

import pytest
import torch

from benchmarks import bench_grounding, common
from tests.conftest import make_tiny, read_metadata


@pytest.fixture(scope="module")
def man_model_dir(tmp_path_factory, coco_train_rows):
    """A tiny random model that says "man" at every step, so that every photo with a person is scored."""
    model, processor = make_tiny([caption for row in coco_train_rows for caption in row["captions"]])
    with torch.no_grad():
        model.get_output_embeddings().bias[processor.tokenizer.convert_tokens_to_ids("man")] = 100.0
    model.generation_config.num_beams, model.generation_config.max_new_tokens = 1, 3
    directory = tmp_path_factory.mktemp("man_model")
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def run_benchmark(monkeypatch, tmp_path, *argv: str) -> tuple[dict, str]:
    results = tmp_path / "RESULTS.md"
    monkeypatch.setattr(common, "RESULTS_FILE", results)
    monkeypatch.setattr(sys, "argv", ["bench_grounding", *argv, "--json", str(tmp_path / "reports.json")])
    bench_grounding.main()
    return json.loads((tmp_path / "reports.json").read_text()), results.read_text() if results.exists() else ""


@pytest.mark.slow
def test_coco_mini_reports_captions_pointing_and_focus(monkeypatch, tmp_path, man_model_dir, coco_mini):
    argv = ["--model", str(man_model_dir), "--name", "tiny", "--dataset_name", str(coco_mini), "--max_samples", "4"]
    reports, results = run_benchmark(monkeypatch, tmp_path, *argv)
    report = reports["tiny"]
    assert report["num_images"] == 4 and set(report["metrics"]) >= {"CIDEr", "BLEU-4"}
    overall = report["pointing"]["object word"]["overall"]
    assert overall["words"] > 0
    assert set(overall) == {"hit_rate", "center_baseline", "random_baseline", "center_margin_se", "words"}
    assert all(0.0 <= overall[key] <= 1.0 for key in ("hit_rate", "center_baseline", "random_baseline"))
    attention = report["attention"]
    assert attention["words"] == 4 * 3 and attention["uniform_peak"] == 1 / 4  # 3 words per caption, 2x2 grid
    assert 0.0 <= attention["entropy_ratio"] <= 1.0 and attention["peak"] >= 1 / 4
    assert "## Grounding (" in results and "| tiny | 4 |" in results and "| object word |" in results


def test_several_splits_with_boxes_only_and_the_three_coco_maps(monkeypatch, tmp_path, man_model_dir, coco_mini):
    boxed = [
        row for split in ("validation", "test") for row in read_metadata(coco_mini / split)
        if row.get("objects") and row["objects"]["bbox"]
    ]  # fmt: skip
    argv = ["--model", str(man_model_dir), "--dataset_name", str(coco_mini), "--split", "validation", "test"]
    reports, _ = run_benchmark(monkeypatch, tmp_path, *argv, "--boxed_only", "--no-save")
    report = reports[man_model_dir.name]
    assert 0 < len(boxed) < 80 and report["num_images"] == len(boxed)
    pointing = report["pointing"]
    assert list(pointing) == ["choosing step", "object word", "phrase (step before + word)"]  # the headline first
    # "man man man": three person mentions per photo with a person; the first word has no step before it.
    words = {name: summary["overall"]["words"] for name, summary in pointing.items()}
    assert words["object word"] == words["phrase (step before + word)"] == 3 * words["choosing step"] // 2 > 0


def test_shapes_scenes_by_default_and_no_save(monkeypatch, tmp_path, man_model_dir):
    reports, results = run_benchmark(monkeypatch, tmp_path, "--model", str(man_model_dir), "--quick", "--no-save")
    report = reports[man_model_dir.name]
    assert report["num_images"] == 20  # --quick: the first 20 held-out scenes
    assert set(report["pointing"]) == {"shape word", "colour+shape phrase"}
    assert report["pointing"]["shape word"]["overall"]["words"] == 0  # "man man man" names no shape
    assert results == ""


def test_experiment_table_rows_are_means_and_spreads_over_seeds():
    from benchmarks.grounding_experiments import HEADERS, VARIANTS, variant_row
    from show_attend_tell.reporting import mean_spread

    def result(seed, shape_hit, seconds):
        overall = {"hit_rate": shape_hit, "center_baseline": 0.0, "random_baseline": 0.0625, "words": 10}
        return {
            "seed": seed,
            "train_seconds": seconds,
            "report": {
                "exact": 0.5,
                "metrics": {"CIDEr": 6.0},
                "pointing": {"shape word": {"overall": overall}, "colour+shape phrase": {"overall": overall}},
                "attention": {"entropy_ratio": 0.9, "peak": 0.1},
            },
        }

    row = variant_row("baseline", [result(42, 0.1, 300.0), result(1, 0.2, None)])
    assert len(row) == len(HEADERS)
    assert row[:5] == ["baseline", "42 1", "15.0 ± 7.1", "6.2 ± 0.0", "0.0 ± 0.0"]
    assert row[6:] == ["90.0 ± 0.0", "0.100 ± 0.000", "50.0 ± 0.0", "6.000 ± 0.000", "300"]
    assert mean_spread([None]) == "n/a"
    assert VARIANTS["baseline"] == [] and all(flag.startswith("--") for flag in VARIANTS["position"][::2])
