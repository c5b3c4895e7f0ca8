"""The recipes in training/recipes/ are complete option files: they parse, name data that exists beside the
repository, and never train or select on a test split."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from training.args import parse_args

RECIPES = sorted((REPO_ROOT / "training" / "recipes").glob("*.yaml"))


def test_the_flickr8k_recipes_exist():
    assert {path.name for path in RECIPES} >= {"flickr8k.yaml", "flickr8k-scst.yaml"}


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda path: path.name)
def test_recipe_parses_and_keeps_test_data_out(recipe: Path, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # recipes name paths relative to the repository root, where commands run
    args = parse_args(["--config_file", str(recipe), "--output_dir", str(tmp_path / "run")])
    assert (REPO_ROOT / args.dataset_name).is_dir(), f"{recipe.name}: data {args.dataset_name} not found"
    assert "test" not in (args.train_split, args.validation_split)
    assert args.feature_cache != "none" and args.fine_tune_encoder_after is None  # frozen encoder, cached features
    assert not args.no_validation and args.metric_for_best_model != "loss"  # selection on validation captions


def test_the_recipe_trains_a_paper_sized_model_on_the_native_image_size():
    args = parse_args(["--config_file", str(REPO_ROOT / "training/recipes/flickr8k.yaml"), "--output_dir", "unused"])
    assert (args.image_size, args.decoder_dim, args.attention_type, args.alpha_c) == (224, 512, "soft", 1.0)
    scst = parse_args(["--config_file", str(REPO_ROOT / "training/recipes/flickr8k-scst.yaml"), "--output_dir", "x"])
    assert scst.scst_after == 0 and scst.model_name_or_path == "runs/flickr8k"
    decoding = ("num_beams", "max_new_tokens", "length_penalty", "no_repeat_ngram_size")
    assert [getattr(scst, name) for name in decoding] == [getattr(args, name) for name in decoding]  # one selection
