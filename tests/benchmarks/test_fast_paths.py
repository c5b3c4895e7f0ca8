"""The fast paths give the same outputs as the straightforward computation (benchmarks/baseline.py), on tiny models.

Nothing here is timed: the benchmarks in benchmarks/ measure speed; these tests make sure the speed is not bought
with different results.
"""

from __future__ import annotations

import pytest
import torch
from datasets import Dataset, Image

from benchmarks.baseline import TutorialDecoder, baseline_beam_search, baseline_greedy, baseline_training_loss
from benchmarks.common import plant_length_unit
from show_attend_tell import (
    ShowAttendTellEncoderOutput,
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
)
from show_attend_tell import ShowAttendTellForConditionalGeneration as Model
from show_attend_tell import modeling_show_attend_tell as modeling
from tests.conftest import tiny_config
from training.feature_cache import build_feature_cache
from training.validation import model_loss

VOCAB_SIZE = 60
NUM_IMAGES = 12
MAX_NEW_TOKENS = 25


@pytest.fixture(scope="module")
def model() -> Model:
    """A tiny model whose captions end at image-dependent lengths (the benchmarks' length unit), with no dropout."""
    torch.manual_seed(0)
    model = Model(tiny_config(VOCAB_SIZE, dropout=0.0)).eval()
    with torch.no_grad():
        plant_length_unit(model)
    return model


@pytest.fixture(scope="module")
def regions(model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    per_image = torch.randn(NUM_IMAGES, 1, model.config.encoder_dim, generator=generator)
    return torch.relu(per_image + torch.randn(NUM_IMAGES, 9, model.config.encoder_dim, generator=generator))


def generate(model: Model, regions: torch.Tensor, num_beams: int, with_projection: bool = True) -> list[list[int]]:
    """Our batched generate() on region features; token ids up to and including the first eos."""
    projected = model.encoder.region_projection(regions) if with_projection else None
    options = {"length_penalty": 0.0, "early_stopping": True} if num_beams > 1 else {}
    with torch.inference_mode():
        sequences = model.generate(
            encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=regions, projected_regions=projected),
            num_beams=num_beams,
            max_new_tokens=MAX_NEW_TOKENS,
            do_sample=False,
            **options,
        )
    eos = model.config.eos_token_id
    captions = []
    for row in sequences.tolist():
        captions.append(row[: row.index(eos) + 1] if eos in row else row)
    return captions


def test_captions_end_at_different_lengths(model, regions):
    # The comparisons below are only meaningful if captions end (eos handling) and at different steps (padding).
    captions = baseline_greedy(model, regions, MAX_NEW_TOKENS)
    assert len({len(caption) for caption in captions}) >= 3
    assert sum(caption[-1] == model.config.eos_token_id for caption in captions) >= NUM_IMAGES // 2


@pytest.mark.parametrize("num_beams", [1, 3])
def test_projection_once_equals_projection_in_every_step(model, regions, num_beams):
    cached = generate(model, regions, num_beams, with_projection=True)
    recomputed = generate(model, regions, num_beams, with_projection=False)
    assert cached == recomputed


def test_stepwise_attention_with_recomputed_projection_matches_cached(model, regions):
    decoder_input_ids = torch.randint(4, VOCAB_SIZE, (NUM_IMAGES, 6), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        fast = model(
            encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=regions), decoder_input_ids=decoder_input_ids
        )
        decoder = TutorialDecoder(model)
        h, c = decoder.init_hidden_state(regions)
        logits = []
        for step in range(decoder_input_ids.shape[1]):
            scores, h, c, _ = decoder.step(regions, decoder_input_ids[:, step], h, c)
            logits.append(scores)
    torch.testing.assert_close(fast.logits, torch.stack(logits, 1), rtol=1e-5, atol=1e-5)


def generate_with_attention(model: Model, regions: torch.Tensor, **kwargs):
    with torch.inference_mode():
        return model.generate(
            encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=regions),
            max_new_tokens=MAX_NEW_TOKENS,
            output_attentions=True,
            return_dict_in_generate=True,
            **kwargs,
        )


@pytest.mark.parametrize(
    "options",
    [
        {"num_beams": 4, "num_return_sequences": 2, "length_penalty": 0.0},
        {"do_sample": True, "num_return_sequences": 3, "top_k": 5},
    ],
)
def test_encoder_outputs_shared_by_rows_equal_repeated_per_row(model, regions, options, monkeypatch):
    seen_images = []
    handle = model.attention.register_forward_pre_hook(lambda _, args: seen_images.append(args[0].shape[0]))
    torch.manual_seed(4)
    try:
        shared = generate_with_attention(model, regions, **options)
    finally:
        handle.remove()
    assert set(seen_images) == {NUM_IMAGES}  # one copy per image, although decoding runs several rows per image
    # transformers' default: the encoder outputs repeated for every row (beam / returned sequence).
    # (through super(): a static method in early 5.x releases, a method in later ones)
    monkeypatch.setattr(model, "_expand_inputs_for_generation", super(Model, model)._expand_inputs_for_generation)
    torch.manual_seed(4)
    repeated = generate_with_attention(model, regions, **options)
    assert torch.equal(shared.sequences, repeated.sequences)
    torch.testing.assert_close(shared.attention_maps, repeated.attention_maps)


def test_attention_energy_in_chunks_equals_all_at_once(model, regions, monkeypatch):
    decoder_input_ids = torch.randint(4, VOCAB_SIZE, (NUM_IMAGES * 3, 4), generator=torch.Generator().manual_seed(5))
    encoder_outputs = ShowAttendTellEncoderOutput(last_hidden_state=regions)
    with torch.no_grad():
        whole = model(encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids)
        # One image (its 3 rows) per chunk instead of all 12 images at once.
        monkeypatch.setattr(modeling, "CPU_ENERGY_CHUNK_ELEMENTS", 1)
        chunked = model(encoder_outputs=encoder_outputs, decoder_input_ids=decoder_input_ids)
    torch.testing.assert_close(chunked.logits, whole.logits)
    torch.testing.assert_close(chunked.attentions, whole.attentions)


def test_batched_greedy_equals_one_image_at_a_time_baseline(model, regions):
    assert generate(model, regions, num_beams=1) == baseline_greedy(model, regions, MAX_NEW_TOKENS)


@pytest.mark.parametrize("num_beams", [3, 5])
def test_beam_search_agrees_with_shrinking_beam_baseline(model, regions, num_beams):
    ours = generate(model, regions, num_beams)
    baseline = baseline_beam_search(model, regions, num_beams, MAX_NEW_TOKENS)
    agree = sum(a == b for a, b in zip(ours, baseline, strict=True))
    # Both rank finished captions by their raw sum of log-probabilities; HF keeps `num_beams` live beams after one
    # ends while the tutorial's beam shrinks, so an occasional image may differ.
    assert agree >= 0.8 * NUM_IMAGES, (agree, ours, baseline)


def test_training_loss_and_gradients_equal_shrinking_batch_baseline(model, regions):
    generator = torch.Generator().manual_seed(3)
    lengths = torch.randint(3, 9, (NUM_IMAGES,), generator=generator)
    labels = torch.full((NUM_IMAGES, int(lengths.max())), -100)
    for row, length in enumerate(lengths.tolist()):
        labels[row, : length - 1] = torch.randint(4, VOCAB_SIZE, (length - 1,), generator=generator)
        labels[row, length - 1] = model.config.eos_token_id
    model.train()
    try:
        results = []
        for loss_fn in (
            lambda: model(encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=regions), labels=labels).loss,
            lambda: baseline_training_loss(model, regions, labels),
        ):
            model.zero_grad(set_to_none=True)
            loss = loss_fn()
            loss.backward()
            grads = {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}
            results.append((loss.detach(), grads))
    finally:
        model.zero_grad(set_to_none=True)
        model.eval()
    (fast_loss, fast_grads), (base_loss, base_grads) = results
    torch.testing.assert_close(fast_loss, base_loss, rtol=1e-5, atol=1e-6)
    assert fast_grads.keys() == base_grads.keys() and "encoder.region_projection.weight" in fast_grads
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], base_grads[name], rtol=1e-4, atol=1e-6, msg=name)


def test_feature_cache_batches_train_like_recomputed_cnn(tmp_path, coco_train_rows):
    rows = coco_train_rows[:4]
    captions = [row["captions"][0] for row in rows]
    tokenizer = build_tokenizer(captions)
    torch.manual_seed(0)
    model = Model(tiny_config(len(tokenizer), dropout=0.0))
    model.freeze_encoder(trainable_blocks=0)
    processor = ShowAttendTellProcessor(
        build_image_processor(model.config.backbone, model.config.image_size), tokenizer
    )
    dataset = Dataset.from_dict({"image": [str(row["path"]) for row in rows]}).cast_column("image", Image())
    cache = build_feature_cache(
        model, processor, dataset, tmp_path, dataset_fingerprint=dataset._fingerprint, progress=False
    )
    labels = processor(text=captions)["labels"]
    order = [2, 0, 3, 1]
    pixel_values = processor(images=dataset[order]["image"])["pixel_values"]
    model.train()
    cached = model_loss(model, {"features": cache[order], "labels": labels}, frozen_encoder=True)
    recomputed = model_loss(model, {"pixel_values": pixel_values, "labels": labels}, frozen_encoder=True)
    torch.testing.assert_close(cached, recomputed, rtol=1e-5, atol=1e-6)
