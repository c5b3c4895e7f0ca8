"""Shapes, attention, the cached projection and generate() paths of the model."""

from __future__ import annotations

import math

import pytest
import torch
from transformers.modeling_outputs import BaseModelOutput

from show_attend_tell import ShowAttendTellCache, ShowAttendTellEncoderOutput, load_image
from tests.conftest import make_tiny

CAPTIONS = [
    "a man riding a wave on a surfboard",
    "a plate of food with broccoli and rice",
    "two giraffes standing next to a tree",
    "a cat sleeping on a laptop keyboard",
]


@pytest.fixture(scope="module")
def tiny(coco_train_rows):
    model, processor = make_tiny(CAPTIONS, seed=3)
    images = [load_image(row["path"]) for row in coco_train_rows[:4]]
    batch = processor(images=images, text=CAPTIONS)
    return model, processor, batch


def test_forward_shapes_and_attention_rows_sum_to_one(tiny):
    model, processor, batch = tiny
    out = model(**batch)
    batch_size, steps = batch["labels"].shape
    num_regions = (model.config.image_size // 32) ** 2
    assert out.logits.shape == (batch_size, steps, model.config.vocab_size)
    assert out.attentions.shape == (batch_size, steps, num_regions)
    assert out.gates.shape == (batch_size, steps)
    # Each caption's steps attend with weights summing to 1; the padding after a caption ends is skipped (zeros).
    valid = (batch["labels"] != -100).float()
    assert 0 < valid.sum() < valid.numel()
    torch.testing.assert_close(out.attentions.sum(-1), valid)
    assert torch.isfinite(out.loss) and out.loss > 0


def test_skipping_padding_changes_nothing_on_caption_steps(tiny):
    model, _, batch = tiny
    packed = model(**batch)  # labels without a cache: each caption leaves the LSTM loop when it ends
    full = model(**batch, use_cache=True)  # every row runs every step
    assert packed.cache is None and isinstance(full.cache, ShowAttendTellCache)
    valid = batch["labels"] != -100
    for name in ("logits", "attentions", "gates"):
        torch.testing.assert_close(getattr(packed, name)[valid], getattr(full, name)[valid], msg=name)
        assert (getattr(packed, name)[~valid] == 0).all(), name
    torch.testing.assert_close(packed.loss, full.loss)


def test_loss_is_cross_entropy_plus_doubly_stochastic_term(tiny):
    model, _, batch = tiny
    out = model(**batch)
    labels = batch["labels"]
    word_loss = torch.nn.functional.cross_entropy(out.logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
    valid = (labels != -100).unsqueeze(-1).float()
    regulariser = ((1 - (out.attentions * valid).sum(1)) ** 2).mean()
    torch.testing.assert_close(out.loss, word_loss + model.config.alpha_c * regulariser)


def test_attention_entropy_penalty_adds_normalised_entropy_and_sharpens_maps(tiny):
    model, _, batch = tiny
    valid = batch["labels"] != -100
    plain = model(**batch)
    sharpened, _ = make_tiny(CAPTIONS, seed=3, attention_entropy_weight=0.5)
    out = sharpened(**batch)
    # Same weights: the penalty adds 0.5 x the mean entropy of the counted steps, as a fraction of log(num_regions).
    num_regions = out.attentions.shape[-1]
    assert num_regions > 1
    entropy = -(out.attentions * out.attentions.log()).sum(-1)[valid] / math.log(num_regions)
    torch.testing.assert_close(out.loss, plain.loss + 0.5 * entropy.mean())
    # The padding's zero weights leave every gradient finite, and descending the penalty lowers the entropy.
    sharpened.train()
    optimizer = torch.optim.SGD(sharpened.parameters(), lr=0.5)
    for _ in range(5):
        optimizer.zero_grad()
        sharpened(**batch).loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in sharpened.parameters() if p.grad is not None)
        optimizer.step()
    sharpened.eval()
    attentions = sharpened(**batch).attentions
    after = -(attentions * attentions.clamp_min(1e-30).log()).sum(-1)[valid] / math.log(num_regions)
    assert after.mean() < entropy.mean() - 0.01


def test_attention_entropy_weight_must_not_be_negative():
    with pytest.raises(ValueError, match="attention_entropy_weight must be >= 0"):
        make_tiny(CAPTIONS, attention_entropy_weight=-0.1)


@pytest.mark.parametrize("state_keyword", ["cache", "past_key_values"])
def test_teacher_forcing_equals_stepwise_decoding_with_cache(tiny, state_keyword):
    # transformers 5.24 renamed `past_key_values` to `cache`: callers may use either name under every release.
    model, _, batch = tiny
    full = model(**batch)
    decoder_input_ids = model._shift_right(batch["labels"])
    encoder_outputs = model.encoder(batch["pixel_values"])
    past, logits = None, []
    for step in range(decoder_input_ids.shape[1]):
        out = model(
            encoder_outputs=encoder_outputs,
            decoder_input_ids=decoder_input_ids[:, step : step + 1],
            use_cache=True,
            **{state_keyword: past},
        )
        past = getattr(out, state_keyword)
        assert past is out.cache and past.get_seq_length() == step + 1
        logits.append(out.logits)
    valid = batch["labels"] != -100
    torch.testing.assert_close(torch.cat(logits, 1)[valid], full.logits[valid], rtol=1e-4, atol=1e-5)


def test_public_decoder_step_from_initial_state_equals_forward(tiny):
    """`initial_state` and `decoder_step`, run by hand for two copies per image (as beams), give forward()'s logits,
    attention, gates and LSTM states; without logits the step leaves them out."""
    model, _, batch = tiny
    encoder_outputs = model.encoder(batch["pixel_values"])
    regions, projected = encoder_outputs.last_hidden_state, encoder_outputs.projected_regions
    decoder_input_ids = model._shift_right(batch["labels"]).repeat_interleave(2, dim=0)  # (images * 2, steps)
    with torch.no_grad():
        full = model(encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids, output_hidden_states=True)
        state, steps = model.initial_state(regions, copies=2), []
        for input_ids in decoder_input_ids.unbind(1):
            steps.append(model.decoder_step(input_ids, state, regions, projected))
            state = (steps[-1].hidden, steps[-1].cell)
        bare = model.decoder_step(
            decoder_input_ids[:, 0], model.initial_state(regions, 2), regions, projected, None, False
        )
    assert state[0].shape == (decoder_input_ids.shape[0], model.config.decoder_dim)
    for name, expected in (("logits", full.logits), ("attentions", full.attentions), ("gates", full.gates),
                           ("hidden", full.decoder_hidden_states[0])):  # fmt: skip
        torch.testing.assert_close(torch.stack([step[name] for step in steps], 1), expected, rtol=1e-5, atol=1e-6)
    assert bare.logits is None and torch.equal(bare.hidden, steps[0].hidden)


def test_projection_is_computed_once_and_matches_recomputation(tiny):
    model, _, batch = tiny
    encoder_outputs = model.encoder(batch["pixel_values"])
    with_projection = model(encoder_outputs=encoder_outputs, labels=batch["labels"])
    regions_only = ShowAttendTellEncoderOutput(last_hidden_state=encoder_outputs.last_hidden_state)
    without_projection = model(encoder_outputs=regions_only, labels=batch["labels"])
    torch.testing.assert_close(with_projection.logits, without_projection.logits)

    calls = []
    handle = model.encoder.region_projection.register_forward_hook(lambda *args: calls.append(1))
    try:
        model.generate(batch["pixel_values"], num_beams=3, max_new_tokens=6)
    finally:
        handle.remove()
    assert len(calls) == 1  # once per batch of images, not per step or per beam


def test_cache_keywords_are_checked(tiny):
    model, _, batch = tiny
    encoder_outputs = model.encoder(batch["pixel_values"])
    first = model(encoder_outputs=encoder_outputs, decoder_input_ids=batch["labels"][:, :1].clamp(min=0))
    with pytest.raises(ValueError, match="`cache` or as `past_key_values`, not both"):
        model(
            encoder_outputs=encoder_outputs,
            decoder_input_ids=batch["labels"][:, 1:2],
            cache=first.cache,
            past_key_values=first.cache,
        )
    with pytest.raises(TypeError, match="ShowAttendTellCache of an earlier call, not tuple"):
        model(encoder_outputs=encoder_outputs, decoder_input_ids=batch["labels"][:, 1:2], cache=(1, 2))


def test_standard_base_model_output_works_as_encoder_outputs(tiny):
    # A plain `BaseModelOutput(last_hidden_state=...)` (no `projected_regions`) is accepted by forward() and generate().
    model, _, batch = tiny
    ours = model.encoder(batch["pixel_values"])
    standard = BaseModelOutput(last_hidden_state=ours.last_hidden_state)
    torch.testing.assert_close(
        model(encoder_outputs=standard, labels=batch["labels"]).logits,
        model(encoder_outputs=ours, labels=batch["labels"]).logits,
    )
    settings = dict(num_beams=3, max_new_tokens=6, output_attentions=True, return_dict_in_generate=True)
    from_standard = model.generate(encoder_outputs=standard, **settings)
    from_pixels = model.generate(batch["pixel_values"], **settings)
    assert torch.equal(from_standard.sequences, from_pixels.sequences)
    torch.testing.assert_close(from_standard.attention_maps, from_pixels.attention_maps)
    assert list(standard.keys()) == ["last_hidden_state"]  # the caller's object is left as it was
    with pytest.raises(ValueError, match=r"last_hidden_state must be a tensor of shape \(batch_size, num_regions"):
        model.generate(encoder_outputs=BaseModelOutput(last_hidden_state=ours.last_hidden_state[0]))


def manual_greedy(model, pixel_values, max_new_tokens):
    """Step-by-step argmax decoding written against forward(), independent of GenerationMixin."""
    encoder_outputs = model.encoder(pixel_values)
    tokens = torch.full((pixel_values.shape[0], 1), model.config.decoder_start_token_id)
    finished = torch.zeros(pixel_values.shape[0], dtype=torch.bool)
    past = None
    for _ in range(max_new_tokens):
        out = model(encoder_outputs=encoder_outputs, decoder_input_ids=tokens[:, -1:], cache=past)
        past = out.cache
        next_token = out.logits[:, -1].argmax(-1)
        next_token = next_token.masked_fill(finished, model.config.pad_token_id)
        tokens = torch.cat([tokens, next_token[:, None]], 1)
        finished |= next_token == model.config.eos_token_id
        if finished.all():
            break
    return tokens


def test_generate_greedy_and_num_beams_1_match_manual_greedy(tiny):
    model, _, batch = tiny
    expected = manual_greedy(model, batch["pixel_values"], 8)
    greedy = model.generate(batch["pixel_values"], do_sample=False, num_beams=1, max_new_tokens=8)
    assert torch.equal(greedy, expected)


def test_batched_generation_equals_one_by_one(tiny):
    model, _, batch = tiny
    for kwargs in ({"num_beams": 1}, {"num_beams": 3}):
        batched = model.generate(batch["pixel_values"], max_new_tokens=8, **kwargs)
        for index in range(batched.shape[0]):
            single = model.generate(batch["pixel_values"][index : index + 1], max_new_tokens=8, **kwargs)
            row = batched[index, : single.shape[1]]
            assert torch.equal(row, single[0]), kwargs
            assert (batched[index, single.shape[1] :] == model.config.pad_token_id).all()


def test_generate_options_work(tiny):
    model, _, batch = tiny
    pixel_values = batch["pixel_values"][:2]
    beams = model.generate(pixel_values, num_beams=4, num_return_sequences=3, max_new_tokens=5, length_penalty=0.5)
    assert beams.shape[0] == 6 and beams.shape[1] <= 6
    torch.manual_seed(0)
    sampled = model.generate(pixel_values, do_sample=True, top_k=5, top_p=0.9, temperature=0.7, max_new_tokens=5)
    assert sampled.shape[0] == 2
    banned = int(beams[0, 1])
    no_banned = model.generate(pixel_values, num_beams=2, max_new_tokens=5, bad_words_ids=[[banned]])
    assert not (no_banned[:, 1:] == banned).any()


@pytest.mark.parametrize("num_beams", [1, 3])
def test_generate_returns_attention_for_every_returned_token(tiny, num_beams):
    model, _, batch = tiny
    out = model.generate(
        batch["pixel_values"],
        num_beams=num_beams,
        num_return_sequences=num_beams,
        max_new_tokens=7,
        output_attentions=True,
        return_dict_in_generate=True,
    )
    maps = out.attention_maps
    generated = out.sequences[:, 1:]
    assert maps.shape[:2] == generated.shape
    # every real token (up to and including eos) has a probability distribution over regions; padding rows are zero
    eos = model.config.eos_token_id
    for row, tokens in zip(maps, generated, strict=True):
        length = (tokens == eos).nonzero()[0].item() + 1 if (tokens == eos).any() else len(tokens)
        torch.testing.assert_close(row[:length].sum(-1), torch.ones(length))
        assert (row[length:] == 0).all()
    # the returned maps are those of the returned sequence: replaying it with teacher forcing gives the same maps
    for index in range(generated.shape[0]):
        tokens = out.sequences[index : index + 1]
        length = int((maps[index].sum(-1) > 0).sum())
        with torch.no_grad():
            replay = model(
                pixel_values=batch["pixel_values"][index // num_beams : index // num_beams + 1],
                decoder_input_ids=tokens[:, :length],
            )
        torch.testing.assert_close(replay.attentions[0], maps[index, :length], rtol=1e-4, atol=1e-5)


def test_frozen_backbone_stays_in_eval_mode_and_keeps_statistics(tiny):
    model, _, batch = tiny
    model.freeze_encoder(trainable_blocks=1)
    try:
        model.train()
        blocks = model.encoder.blocks()
        assert all(not block.training for block in blocks[:-1]) and blocks[-1].training
        assert not any(p.requires_grad for block in blocks[:-1] for p in block.parameters())
        assert all(p.requires_grad for p in blocks[-1].parameters())
        frozen_bn = next(m for b in blocks[:-1] for m in b.modules() if isinstance(m, torch.nn.BatchNorm2d))
        before = frozen_bn.running_mean.clone()
        model(**batch).loss.backward()
        torch.testing.assert_close(frozen_bn.running_mean, before)
    finally:
        model.freeze_encoder(trainable_blocks=None)
        model.zero_grad()
        model.eval()


def test_config_rejects_wrong_encoder_dim():
    from show_attend_tell import ShowAttendTellConfig, ShowAttendTellForConditionalGeneration

    with pytest.raises(ValueError, match="encoder_dim=7"):
        ShowAttendTellForConditionalGeneration(ShowAttendTellConfig(backbone="resnet10t", encoder_dim=7))


def test_forward_without_inputs_gives_clear_errors(tiny):
    model, _, batch = tiny
    with pytest.raises(ValueError, match="pixel_values"):
        model(labels=batch["labels"])
    with pytest.raises(ValueError, match="decoder_input_ids"):
        model(pixel_values=batch["pixel_values"])


def test_generate_from_region_features_projects_once_and_leaves_inputs_untouched(tiny):
    model, _, batch = tiny
    regions = model.encoder.backbone_features(batch["pixel_values"]).detach()
    features = ShowAttendTellEncoderOutput(last_hidden_state=regions)
    expected = model.generate(batch["pixel_values"], num_beams=3, max_new_tokens=6)
    calls = []
    handle = model.encoder.region_projection.register_forward_hook(lambda *args: calls.append(1))
    try:
        for _ in range(2):  # the same object twice: generate() must not expand the caller's tensors in place
            assert torch.equal(model.generate(encoder_outputs=features, num_beams=3, max_new_tokens=6), expected)
    finally:
        handle.remove()
    assert len(calls) == 2 and features.last_hidden_state.shape[0] == regions.shape[0]
