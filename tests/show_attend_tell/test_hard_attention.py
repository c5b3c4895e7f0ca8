"""Stochastic hard attention in the model (paper section 4.1): sampled locations follow alpha, the expected-context
trick, deterministic decoding with the expected context at test time, and saving / loading the attention type."""

from __future__ import annotations

import torch
from PIL import Image

from show_attend_tell import ShowAttendTellConfig, ShowAttendTellEncoderOutput, caption_images
from tests.conftest import make_tiny

CAPTIONS = ["a red circle above a blue square", "a green triangle left of a red circle"]


def _repeated_features(model, rows: int, seed: int = 0) -> ShowAttendTellEncoderOutput:
    generator = torch.Generator().manual_seed(seed)
    regions = torch.randn(1, model.config.num_regions, model.config.encoder_dim, generator=generator)
    return ShowAttendTellEncoderOutput(last_hidden_state=regions.expand(rows, -1, -1).contiguous())


def test_attention_type_defaults_to_soft_and_is_saved(tmp_path):
    assert ShowAttendTellConfig(backbone="resnet10t", image_size=64).attention_type == "soft"
    model, processor = make_tiny(CAPTIONS, attention_type="hard", hard_expected_context_prob=0.25)
    model.save_pretrained(tmp_path)
    loaded = type(model).from_pretrained(tmp_path)
    assert (loaded.config.attention_type, loaded.config.hard_expected_context_prob) == ("hard", 0.25)
    try:
        ShowAttendTellConfig(backbone="resnet10t", image_size=64, attention_type="sharp")
    except ValueError as error:
        assert "attention_type must be one of ('soft', 'hard')" in str(error)
    else:
        raise AssertionError("an unknown attention type was accepted")


def test_sampled_locations_follow_alpha():
    # 20000 captions of the same image: the first step's alpha is the same for all of them, so the frequencies of the
    # sampled locations must match it (binomial standard deviation <= 0.0036; tolerance ~4 of them).
    model, _ = make_tiny(CAPTIONS, attention_type="hard", hard_expected_context_prob=0.0)
    model.train()
    rows = 20000
    labels = torch.full((rows, 1), model.config.eos_token_id)
    torch.manual_seed(0)
    outputs = model(encoder_outputs=_repeated_features(model, rows), labels=labels)
    alpha = outputs.attentions[0, 0].detach()
    assert torch.allclose(outputs.attentions[:, 0], alpha.expand(rows, -1), atol=1e-6)
    assert alpha.max() - alpha.min() > 0.2  # far from uniform (and from one-hot), so a wrong sampler fails
    locations = outputs.attention_locations[:, 0]
    assert (locations >= 0).all()
    frequencies = torch.bincount(locations, minlength=model.config.num_regions).float() / rows
    assert (frequencies - alpha).abs().max() < 0.015, (frequencies, alpha)


def test_half_of_the_captions_use_the_expected_context():
    model, _ = make_tiny(CAPTIONS, attention_type="hard")  # hard_expected_context_prob = 0.5, the paper's
    model.train()
    rows = 4000
    labels = torch.full((rows, 3), model.config.eos_token_id)
    labels[: rows // 2, 2] = -100  # captions of different lengths: padding steps are -1 too
    torch.manual_seed(0)
    locations = model(encoder_outputs=_repeated_features(model, rows), labels=labels).attention_locations
    expected_rows = (locations[:, 0] == -1).float()
    assert abs(expected_rows.mean().item() - 0.5) < 0.04
    # A caption samples at every step or at none.
    assert torch.equal((locations[:, :2] >= 0).all(dim=1), (locations[:, :2] >= 0).any(dim=1))
    assert (locations[: rows // 2, 2] == -1).all()


def test_test_time_uses_the_expected_context_like_a_soft_model():
    soft, processor = make_tiny(CAPTIONS, seed=3)
    hard, _ = make_tiny(CAPTIONS, seed=3, attention_type="hard")
    hard.load_state_dict(soft.state_dict())
    images = [Image.new("RGB", (80, 60), "red"), Image.new("RGB", (60, 80), "blue")]
    pixel_values = processor(images=images)["pixel_values"]
    for options in ({"num_beams": 1}, {"num_beams": 3}, {"do_sample": True, "top_k": 0}):
        outputs = {}
        for name, model in (("soft", soft), ("hard", hard)):
            torch.manual_seed(1)
            outputs[name] = model.generate(
                pixel_values, max_new_tokens=6, output_attentions=True, return_dict_in_generate=True, **options
            )
        assert torch.equal(outputs["soft"].sequences, outputs["hard"].sequences)
        assert torch.equal(outputs["soft"].attention_maps, outputs["hard"].attention_maps)
        maps, locations = outputs["hard"].attention_maps, outputs["hard"].attention_locations
        assert "attention_locations" not in outputs["soft"]
        assert locations.shape == maps.shape[:2]
        active = maps.sum(-1) > 0
        assert torch.equal(locations[active], maps.argmax(-1)[active]) and (locations[~active] == -1).all()
    # Eval-mode forward: no sampling, no locations; the pipeline's path works unchanged.
    assert (
        hard(pixel_values=pixel_values, decoder_input_ids=torch.ones(2, 1, dtype=torch.long)).attention_locations
        is None
    )
    results = caption_images(hard, processor, images, num_beams=2, max_new_tokens=6)
    assert [result.attention.shape[1:] for result in results] == [tuple(hard.config.grid_size)] * 2
