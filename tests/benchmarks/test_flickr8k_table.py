"""The Flickr8k table's per-run footnote: the settings of the run, read from what training and evaluation save."""

from __future__ import annotations

import pytest

from benchmarks.flickr8k_table import run_row
from training.args import parse_args
from training.train import write_json


def saved_run(tmp_path, *argv: str) -> tuple:
    """A model folder with the `training_args.json` of `argv` and an evaluation folder pointing at it."""
    model_dir, eval_dir = tmp_path / "model", tmp_path / "eval-test"
    model_dir.mkdir()
    eval_dir.mkdir()
    args = parse_args(["--output_dir", str(model_dir), *argv])
    write_json(model_dir / "training_args.json", vars(args))  # as training saves them
    write_json(model_dir / "val_metrics.json", {"train_runtime_s": 1500.0})
    evaluation = {
        "model": str(model_dir),
        "decoding": {"num_beams": 10, "length_penalty": 1.0, "no_repeat_ngram_size": 3},
        "metrics": {"BLEU-4": 0.2, "CIDEr": 0.5},
    }
    write_json(eval_dir / "metrics.json", evaluation)
    return run_row(eval_dir)


def test_footnote_names_the_attention_entropy_weight_and_no_self_critical_options_of_a_cross_entropy_run(tmp_path):
    metrics, runtime, settings = saved_run(tmp_path, "--attention_entropy_weight", "0.1", "--image_size", "448")

    assert metrics == {"BLEU-4": 0.2, "CIDEr": 0.5}
    assert runtime == "25 min"
    assert "image_size 448" in settings and "attention_entropy_weight 0.1" in settings
    assert "scst" not in settings, settings
    assert settings.endswith("test decoding: beam 10, length penalty 1.0, no repeated 3-grams")


@pytest.mark.parametrize("temperature", ["0.5", "0.7"])
def test_footnote_of_a_self_critical_run_names_its_sampling_temperature(tmp_path, temperature):
    _, _, settings = saved_run(
        tmp_path, "--scst", "--model_name_or_path", str(tmp_path), "--scst_temperature", temperature
    )

    assert f"scst_after 0, scst_temperature {temperature}" in settings, settings
