"""The frozen-encoder feature cache: exact features, reuse, keys, and the same training as without it."""

from __future__ import annotations

import json

import pytest
import torch

from show_attend_tell import caption_images
from tests.conftest import make_tiny
from tests.training.train_utils import TINY_ARGS, read_json, read_weights, run_training
from training.feature_cache import FeatureCache, build_feature_cache
from training.shapes import make_shapes_dataset
from training.validation import captions_from_features


@pytest.fixture(scope="module")
def scenes():
    return make_shapes_dataset(10, seed=3)


def test_cache_holds_the_backbone_features_and_is_reused(tmp_path, scenes):
    model, processor = make_tiny(["a red circle"])
    cache = build_feature_cache(
        model, processor, scenes, tmp_path, dataset_fingerprint=scenes._fingerprint, batch_size=4, shard_size=4
    )
    assert len(cache) == 10 and len(cache.manifest["shards"]) == 3  # 4 + 4 + 2 images
    with torch.no_grad():
        expected = model.encoder.backbone_features(processor(images=list(scenes["image"]))["pixel_values"])
    torch.testing.assert_close(cache[list(range(10))], expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache[[7, 2, 7]], expected[[7, 2, 7]], rtol=1e-5, atol=1e-5)
    with pytest.raises(IndexError, match="out of range"):
        cache[[10]]

    manifest = cache.directory / "manifest.json"
    written = manifest.stat().st_mtime_ns
    again = build_feature_cache(model, processor, scenes, tmp_path, dataset_fingerprint=scenes._fingerprint)
    assert again.directory == cache.directory and manifest.stat().st_mtime_ns == written
    assert [path.name for path in tmp_path.iterdir()] == [cache.directory.name]  # no temporary folder left


def test_cache_key_follows_the_feature_map(tmp_path, scenes):
    """timm's features_only backbones hold the same weights whatever `out_indices`: the key must still differ, or a
    `--feature_index -2` run reads the stride-32 features of an earlier run (it did: a shape error in the loop)."""
    options = dict(backbone="tf_efficientnet_lite0", image_size=64)  # its feature backbones keep every block
    model, processor = make_tiny(["a red circle"], **options)
    finer, _ = make_tiny(["a red circle"], feature_index=-2, **options)
    last = build_feature_cache(model, processor, scenes, tmp_path, dataset_fingerprint="data-a")
    stride16 = build_feature_cache(finer, processor, scenes, tmp_path, dataset_fingerprint="data-a")
    assert last.directory != stride16.directory
    assert stride16.feature_shape == (finer.config.num_regions, finer.config.encoder_dim) != last.feature_shape


def test_a_saved_and_reloaded_captioner_reuses_the_cache(tmp_path, scenes):
    """SCST on a saved folder (`--model_name_or_path`) must read the cache its training built: the reloaded
    processor's `auto_map` is not part of the key (it was, and the Flickr8k SCST run re-encoded 8,000 photos)."""
    model, processor = make_tiny(["a red circle"])
    first = build_feature_cache(model, processor, scenes, tmp_path / "cache", dataset_fingerprint="data-a")
    model.save_pretrained(tmp_path / "folder")
    processor.save_pretrained(tmp_path / "folder")
    reloaded = type(model).from_pretrained(tmp_path / "folder")
    reloaded_processor = type(processor).from_pretrained(tmp_path / "folder")
    assert "auto_map" in reloaded_processor.image_processor.to_dict()
    again = build_feature_cache(reloaded, reloaded_processor, scenes, tmp_path / "cache", dataset_fingerprint="data-a")
    assert again.directory == first.directory


def test_cache_key_follows_weights_image_size_and_data(tmp_path, scenes):
    model, processor = make_tiny(["a red circle"])
    first = build_feature_cache(model, processor, scenes, tmp_path, dataset_fingerprint="data-a").directory
    other_data = build_feature_cache(model, processor, scenes, tmp_path, dataset_fingerprint="data-b").directory
    with torch.no_grad():
        model.encoder.backbone.conv1[0].weight.add_(0.01)
    other_weights = build_feature_cache(model, processor, scenes, tmp_path, dataset_fingerprint="data-a").directory
    bigger, big_processor = make_tiny(["a red circle"], image_size=96)
    other_size = build_feature_cache(bigger, big_processor, scenes, tmp_path, dataset_fingerprint="data-a").directory
    assert len({first, other_data, other_weights, other_size}) == 4
    assert FeatureCache(other_size).feature_shape == (9, model.config.encoder_dim)  # 96 px -> 3x3 grid


def test_training_from_the_cache_equals_training_from_images(tmp_path):
    # Dropout is on, so the runs also agree only if the cache leaves the RNG stream untouched.
    common = [*TINY_ARGS, "--max_train_samples", 10, "--max_train_steps", 6, "--dropout", 0.5, "--no_validation"]
    cached, direct = tmp_path / "cached", tmp_path / "direct"
    run_training(*common, "--output_dir", cached, "--feature_cache", tmp_path / "cache")
    run_training(*common, "--output_dir", direct, "--feature_cache", "none")

    (cache_dir,) = (tmp_path / "cache").iterdir()
    assert json.loads((cache_dir / "manifest.json").read_text())["num_images"] == 10
    cached_losses = [entry["loss"] for entry in read_json(cached / "trainer_state.json")["log_history"]]
    direct_losses = [entry["loss"] for entry in read_json(direct / "trainer_state.json")["log_history"]]
    assert len(cached_losses) == 6
    assert cached_losses == pytest.approx(direct_losses, rel=1e-5, abs=1e-6)
    expected, actual = read_weights(direct / "model.safetensors"), read_weights(cached / "model.safetensors")
    # The attention score's bias shifts all scores equally and cancels in the softmax: its exact gradient is zero and
    # Adam scales float round-off up to step size, so only that parameter is not comparable.
    for name in expected.keys() - {"attention.score.bias"}:
        torch.testing.assert_close(actual[name], expected[name], rtol=1e-4, atol=1e-5, msg=name)


def test_validation_captions_from_the_cache_equal_captions_from_images(tmp_path, scenes):
    model, processor = make_tiny([f"a {colour} circle" for colour in ("red", "green", "blue", "yellow")], seed=5)
    cache = build_feature_cache(model, processor, scenes, tmp_path, dataset_fingerprint=scenes._fingerprint)
    decoding = {"num_beams": 3, "max_new_tokens": 6}
    indices = [9, 0, 4, 5, 2]
    images = scenes.select(indices)["image"]
    from_images = [c.text for c in caption_images(model, processor, images, batch_size=2, **decoding)]
    from_cache = [
        c.text for c in captions_from_features(model, processor, cache, indices, batch_size=2, decoding=decoding)
    ]
    assert from_cache == from_images
    assert len(set(from_cache)) > 1  # captions depend on the image, so a mixed-up row would show
