"""transformers' common model tests (`ModelTesterMixin`) of the INSTALLED release, run against a tiny
Show-Attend-Tell model with a tester in transformers' usual pattern (as for Pix2Struct, an image-to-text model).

The test files come from the installed release's source distribution (tests/show_attend_tell/transformers_suite.py),
so CI's compatibility leg holds the model to the contract of each release of its matrix (`remote_code` marker). Every
test of the mixin runs, except those that the mixin skips itself (accelerators, flash attention, tensor parallelism,
self-attention outputs: `has_attentions = False`, ...) and those skipped below, each with its reason. The tests after
the mixin's check the generation contract (GenerationTesterMixin is not in the source distributions).
"""

from __future__ import annotations

import unittest

import pytest
import torch

from show_attend_tell import (
    ShowAttendTellCache,
    ShowAttendTellConfig,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellOutput,
)
from show_attend_tell.configuration_show_attend_tell import CACHE_NAME
from tests.show_attend_tell.transformers_suite import import_release_tests

pytestmark = pytest.mark.remote_code

modeling_common = import_release_tests("test_modeling_common")


class ShowAttendTellModelTester:
    """Tiny inputs and configuration: resnet10t's second feature map (64 channels) of 16-pixel images is a 4x4 grid."""

    def __init__(
        self, parent, batch_size: int = 2, seq_length: int = 5, vocab_size: int = 17, is_training: bool = True
    ):
        self.parent = parent
        self.batch_size = batch_size
        self.seq_length = seq_length
        self.vocab_size = vocab_size
        self.is_training = is_training
        self.image_size = 16
        self.hidden_size = 64  # the region features' channels and the LSTM's width, so both hidden states have it
        self.encoder_seq_length = 16  # regions: the 4x4 grid
        self.decoder_seq_length = seq_length
        # One hidden state per side: the encoder's region features and the LSTM's hidden state of every step.
        self.num_hidden_layers = 1
        self.expected_num_hidden_layers = 1

    def get_config(self) -> ShowAttendTellConfig:
        return ShowAttendTellConfig(
            backbone="resnet10t",
            feature_index=1,
            image_size=self.image_size,
            attention_dim=16,
            embed_dim=16,
            decoder_dim=self.hidden_size,
            vocab_size=self.vocab_size,
            dropout=0.0,
        )

    def prepare_config_and_inputs(self) -> tuple[ShowAttendTellConfig, torch.Tensor, torch.Tensor]:
        pixel_values = modeling_common.floats_tensor([self.batch_size, 3, self.image_size, self.image_size])
        decoder_input_ids = modeling_common.ids_tensor([self.batch_size, self.seq_length], self.vocab_size)
        return self.get_config(), pixel_values, decoder_input_ids

    def prepare_config_and_inputs_for_common(self) -> tuple[ShowAttendTellConfig, dict]:
        config, pixel_values, decoder_input_ids = self.prepare_config_and_inputs()
        return config, {"pixel_values": pixel_values, "decoder_input_ids": decoder_input_ids}


class ShowAttendTellModelTest(modeling_common.ModelTesterMixin, unittest.TestCase):
    all_model_classes = (ShowAttendTellForConditionalGeneration,)
    is_encoder_decoder = True
    # A CNN encoder and an LSTM decoder have no self-attention, whose outputs these tests check (as for ResNet or
    # ConvNext encoders). The cross-attention over the regions is tested below.
    has_attentions = False

    def setUp(self):
        self.model_tester = ShowAttendTellModelTester(self)

    def _prepare_for_class(self, inputs_dict: dict, model_class: type, return_labels: bool = False) -> dict:
        inputs_dict = super()._prepare_for_class(inputs_dict, model_class, return_labels=return_labels)
        if return_labels:  # the captioning loss: the decoder inputs' next words
            inputs_dict["labels"] = inputs_dict["decoder_input_ids"].roll(-1, dims=1)
        return inputs_dict

    @unittest.skip(
        reason="The release's source distribution does not ship tests/generation/test_utils.py "
        "(GenerationTesterMixin); this module tests the generation contract itself (test_generate_* below)."
    )
    def test_generation_tester_mixin_inheritance(self):
        pass

    @unittest.skip(
        reason="The model is not a base model plus a head: the deep output layer reads the word embedding, the LSTM "
        "state and the attended context of each step, so no submodule is a base model; moving the weights under one "
        "would rename the keys of every saved checkpoint. `base_model_prefix` is only the prefix of those keys."
    )
    def test_model_base_model_prefix(self):
        pass

    @unittest.skip(
        reason="It writes new token ids into `input_ids`, a text input of the encoder; this captioner's encoder "
        "reads pixels only (test_resize_token_embeddings below resizes the decoder's vocabulary)."
    )
    def test_resize_tokens_embeddings(self):
        pass

    @unittest.skip(reason="As test_resize_tokens_embeddings: it writes new token ids into `input_ids`.")
    def test_resize_embeddings_untied(self):
        pass


# --------------------------------------------------------------------------------------------------------------------
# The contracts that GenerationTesterMixin would check, and those of the common tests that write `input_ids`.
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def tiny() -> tuple[ShowAttendTellForConditionalGeneration, dict]:
    tester = ShowAttendTellModelTester(parent=None)
    config, inputs = tester.prepare_config_and_inputs_for_common()
    torch.manual_seed(0)
    return ShowAttendTellForConditionalGeneration(config).eval(), inputs


def test_forward_outputs_follow_config_and_arguments(tiny):
    model, inputs = tiny
    plain = model(**inputs)
    assert plain.cross_attentions is None and plain.decoder_hidden_states is None and plain.cache is not None
    model.config.output_attentions = model.config.output_hidden_states = True
    model.config.use_cache = False
    full = model(**inputs)
    (cross_attentions,) = full.cross_attentions
    assert cross_attentions.shape == (2, 1, 5, 16)
    torch.testing.assert_close(cross_attentions[:, 0], full.attentions)
    (hidden,) = full.decoder_hidden_states
    assert hidden.shape == (2, 5, 64) and full.cache is None
    assert full.encoder_hidden_states[0] is full.encoder_last_hidden_state
    torch.testing.assert_close(full.logits, plain.logits)
    # The state of a cache continues the same hidden states: the last step's hidden state is the cache's.
    torch.testing.assert_close(plain.cache.hidden, hidden[:, -1])
    model.config.return_dict = False
    as_tuple = model(**inputs)
    assert isinstance(as_tuple, tuple) and len(as_tuple) == len(full.to_tuple())
    torch.testing.assert_close(as_tuple[0], full.logits)
    assert isinstance(model(**inputs, return_dict=True), ShowAttendTellOutput)


def test_generate_returns_hidden_states(tiny):
    model, inputs = tiny
    out = model.generate(
        inputs["pixel_values"],
        max_new_tokens=4,
        min_new_tokens=4,
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    assert len(out.decoder_hidden_states) == 4  # one tuple per generated token
    first, *later = out.decoder_hidden_states
    assert first[0].shape == (2, 1, 64) and all(step[0].shape == (2, 1, 64) for step in later)
    assert out.encoder_hidden_states[0].shape == (2, 16, 64)
    # The hidden state that produced each token is the teacher-forced one at the same step.
    with torch.no_grad():
        forced = model(inputs["pixel_values"], decoder_input_ids=out.sequences[:, :-1], output_hidden_states=True)
    torch.testing.assert_close(
        torch.cat([step[0] for step in out.decoder_hidden_states], 1), forced.decoder_hidden_states[0]
    )


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_continues_from_returned_cache(tiny, num_beams):
    model, inputs = tiny
    settings = dict(num_beams=num_beams, do_sample=False, min_new_tokens=6, max_new_tokens=6)
    whole = model.generate(inputs["pixel_values"], **settings)
    first = model.generate(
        inputs["pixel_values"], **{**settings, "min_new_tokens": 3, "max_new_tokens": 3}, return_dict_in_generate=True
    )
    cache = first[CACHE_NAME]  # `past_key_values` before transformers 5.24
    assert isinstance(cache, ShowAttendTellCache) and cache.get_seq_length() == first.sequences.shape[1] - 1
    if num_beams == 1:  # beam search may keep other beams after 3 steps than after 6: only greedy must agree
        continued = model.generate(
            inputs["pixel_values"],
            decoder_input_ids=first.sequences,
            **{CACHE_NAME: cache},
            **{**settings, "min_new_tokens": 3, "max_new_tokens": 3},
        )
        assert torch.equal(continued, whole)
    else:
        continued = model.generate(
            inputs["pixel_values"], decoder_input_ids=first.sequences, **{CACHE_NAME: cache}, max_new_tokens=3
        )
        assert torch.equal(continued[:, : first.sequences.shape[1]], first.sequences)


def test_prepare_inputs_for_generation_passes_model_keywords(tiny):
    model, _ = tiny
    ids = torch.ones(2, 3, dtype=torch.long)
    cache = ShowAttendTellCache(torch.zeros(2, 64), torch.zeros(2, 64), seq_length=2)
    step = model.prepare_inputs_for_generation(
        ids, encoder_outputs="regions", output_hidden_states=True, return_dict=True, **{CACHE_NAME: cache}
    )
    assert step["decoder_input_ids"].shape == (2, 1) and step["cache"] is cache
    assert step["output_hidden_states"] is True and step["return_dict"] is True and step["encoder_outputs"] == "regions"
    assert "past_key_values" not in step or CACHE_NAME == "cache"


def test_init_weights_on_meta_device_matches_construction(tiny):
    model, _ = tiny
    with torch.device("meta"):
        on_meta = ShowAttendTellForConditionalGeneration(model.config)
    on_meta.to_empty(device="cpu")
    on_meta.init_weights()
    buffers = dict(on_meta.named_buffers())
    for name, buffer in model.named_buffers():
        assert torch.equal(buffers[name], buffer), name


def test_resize_token_embeddings(tiny):
    model, inputs = tiny
    model.resize_token_embeddings(27)
    assert model.config.vocab_size == 27 and model.get_output_embeddings().weight.shape[0] == 27
    inputs["decoder_input_ids"][:, -1] = 26
    assert model(**inputs).logits.shape == (2, 5, 27)
    model.resize_token_embeddings(10)
    assert model.get_input_embeddings().weight.shape[0] == 10
    inputs["decoder_input_ids"].clamp_(max=9)
    assert model(**inputs).logits.shape == (2, 5, 10)
