"""Options of training/train.py: config files, data-dependent defaults, validation, and fail-fast Hub checks."""

from __future__ import annotations

import json

import pytest

from tests.training.train_utils import TINY_ARGS, run_training
from training.args import BUILTIN_DEFAULTS, REAL_DATA_DEFAULTS, parse_args


def test_builtin_and_real_data_get_their_own_defaults():
    builtin = parse_args(["--output_dir", "out"])
    assert builtin.dataset_name is None
    for name, value in BUILTIN_DEFAULTS.items():
        assert getattr(builtin, name) == value
    real = parse_args(["--output_dir", "out", "--dataset_name", "some/data", "--decoder_dim", "64"])
    assert real.decoder_dim == 64  # an explicit value wins
    assert real.image_size == REAL_DATA_DEFAULTS["image_size"] != BUILTIN_DEFAULTS["image_size"]
    grounding = parse_args(
        ["--output_dir", "out", "--position_embedding", "learned", "--attention_temperature", "0.5"]
        + ["--attention_entropy_weight", "0.1"]
    )
    assert (grounding.position_embedding, grounding.attention_temperature) == ("learned", 0.5)
    assert (builtin.attention_entropy_weight, grounding.attention_entropy_weight) == (0.0, 0.1)


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
def test_config_file_values_are_defaults_that_the_command_line_overrides(tmp_path, suffix):
    values = {"dataset_name": "../shared/data/coco-mini", "learning_rate": 0.01, "checkpointing_steps": "25"}
    path = tmp_path / f"run{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        path.write_text("dataset_name: ../shared/data/coco-mini\nlearning_rate: 0.01\ncheckpointing_steps: '25'\n")
    args = parse_args(["--config_file", str(path), "--output_dir", "out", "--learning_rate", "0.5"])
    assert args.dataset_name == "../shared/data/coco-mini"
    assert args.learning_rate == 0.5
    assert args.checkpointing_steps == 25  # converted like the command-line value


def test_config_file_with_an_unknown_option_is_rejected(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("learning_rate: 0.01\nlearning_rat: 0.02\n")
    with pytest.raises(SystemExit, match=r"run\.yaml: unknown option\(s\) \['learning_rat'\]"):
        parse_args(["--config_file", str(path), "--output_dir", "out"])


@pytest.mark.parametrize(
    "argv",
    [
        ["--checkpointing_steps", "soon"],
        ["--checkpointing_steps", "0"],
        ["--streaming", "--dataset_name", "x"],
        ["--max_train_steps", "0"],
        ["--metric_for_best_model", "accuracy"],
        ["--attention_temperature", "0"],
        ["--attention_entropy_weight", "-0.1"],
        ["--position_embedding", "rotary"],
        ["--no_repeat_ngram_size", "-2"],
    ],
)
def test_bad_options_are_rejected(argv, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--output_dir", "out", *argv])
    assert "error" in capsys.readouterr().err


def test_resume_flag_alone_means_latest():
    assert parse_args(["--output_dir", "out", "--resume_from_checkpoint"]).resume_from_checkpoint == "latest"
    assert parse_args(["--output_dir", "out"]).resume_from_checkpoint is None


def test_push_to_hub_offline_fails_before_loading_any_data(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SystemExit, match="--push_to_hub: .*HF_HUB_OFFLINE"):
        run_training(*TINY_ARGS, "--output_dir", tmp_path / "run", "--push_to_hub", "--hub_model_id", "someone/model")
    assert not (tmp_path / "run").exists()
