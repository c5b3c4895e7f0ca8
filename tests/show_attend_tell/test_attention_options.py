"""Attention options for grounding: 2-D position embeddings of the regions' attention keys and an attention
temperature. Their defaults are the paper's model, so folders saved before them load and run unchanged."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModel

from show_attend_tell import ShowAttendTellConfig
from show_attend_tell.modeling_show_attend_tell import sinusoidal_positions
from tests.conftest import make_tiny, tiny_config

CAPTIONS = ["a red circle above a blue square", "a green triangle left of a red circle"]


def test_defaults_are_the_paper_model():
    config = ShowAttendTellConfig(backbone="resnet10t", image_size=64)
    assert config.position_embedding == "none" and config.attention_temperature == 1.0
    model, _ = make_tiny(CAPTIONS)
    names = [name for name, _ in model.encoder.region_projection.named_parameters()]
    assert names == ["weight", "bias"]  # the state dict of older folders


def test_a_config_without_the_options_loads_with_the_defaults():
    saved = tiny_config(20).to_dict()
    for name in ("position_embedding", "attention_temperature"):
        saved.pop(name)
    config = ShowAttendTellConfig.from_dict(saved)
    assert config.position_embedding == "none" and config.attention_temperature == 1.0


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match="position_embedding must be one of"):
        tiny_config(20, position_embedding="rotary")
    with pytest.raises(ValueError, match="attention_temperature must be positive"):
        tiny_config(20, attention_temperature=0)


def test_sinusoidal_codes_depend_on_row_and_column():
    codes = sinusoidal_positions(2, 3, 8).view(2, 3, 8)
    assert torch.equal(codes[0, :, :4], codes[0, :1, :4].expand(3, 4))  # first half: the row only
    assert torch.equal(codes[:, 1, 4:], codes[:1, 1, 4:].expand(2, 4))  # second half: the column only
    assert len({tuple(code.tolist()) for code in codes.view(6, 8)}) == 6


@pytest.mark.parametrize("kind", ["learned", "sinusoidal"])
def test_position_embeddings_move_attention_and_survive_saving(kind, tmp_path):
    model, processor = make_tiny(CAPTIONS, position_embedding=kind)
    plain, _ = make_tiny(CAPTIONS)
    plain.load_state_dict(model.state_dict(), strict=False)
    pixels = torch.randn(2, 3, 64, 64)
    decoding = dict(max_new_tokens=3, output_attentions=True, return_dict_in_generate=True)
    maps = model.generate(pixel_values=pixels, **decoding).attention_maps
    assert not torch.allclose(maps, plain.generate(pixel_values=pixels, **decoding).attention_maps)
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path, trust_remote_code=True)
    assert loaded.config.position_embedding == kind
    assert torch.equal(loaded.generate(pixel_values=pixels, **decoding).attention_maps, maps)


def test_temperature_sharpens_the_same_scores():
    model, _ = make_tiny(CAPTIONS)
    regions = torch.rand(1, 4, model.config.encoder_dim)
    projected, hidden = model.encoder.region_projection(regions), torch.randn(1, model.config.decoder_dim)
    _, alpha, _ = model.attention(regions, projected, hidden)
    model.attention.temperature = 0.5
    _, sharp, _ = model.attention(regions, projected, hidden)
    assert torch.allclose(sharp, (2 * alpha.log()).softmax(-1), atol=1e-6)  # softmax(s / 0.5) = softmax(2 s)
    assert sharp.max() > alpha.max()
