"""Property-based fuzzing of the public entry points: image loading, the processor, tokenizer building, `generate()`
inputs and endpoint handler requests. Every generated input either succeeds with a well-formed result or raises
`ValueError` whose message names the input. The example budgets are fixed so the suite takes well under a minute."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image
from transformers import GenerationConfig

from model_card.handler import PARAMETERS, EndpointHandler
from show_attend_tell import build_tokenizer, load_image
from show_attend_tell.processing_show_attend_tell import MIN_IMAGE_SIDE, SEGMENTATIONS
from tests.conftest import make_tiny

# Derandomised: CI runs the same examples every time, so a red run is reproducible and never a matter of luck.
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

DTYPES = [np.uint8, np.uint16, np.int64, np.float32, np.float64, np.bool_]
arrays = st.sampled_from(DTYPES).flatmap(
    lambda dtype: hnp.arrays(
        dtype,
        hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=40),
        elements=None if dtype is np.bool_ else hnp.from_dtype(np.dtype(dtype), allow_nan=True, allow_infinity=True),
    )
)
png_bytes = st.builds(
    lambda w, h, colour: _png(w, h, colour), st.integers(4, 40), st.integers(4, 40), st.integers(0, 255)
)
captions = st.lists(st.one_of(st.text(max_size=30), st.integers()), max_size=3)
image_like = st.one_of(arrays, png_bytes, st.binary(max_size=64), st.text(max_size=80), st.integers(), st.none())


def _png(width: int, height: int, colour: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (colour, 255 - colour, 0)).save(buffer, "PNG")
    return buffer.getvalue()


def _names_the_input(message: str) -> bool:
    return any(word in message for word in ("image", "Image", "array", "inputs", "base64", "not found", "<"))


@FUZZ
@given(source=image_like)
def test_load_image_gives_rgb_or_a_clear_error(source):
    try:
        image = load_image(source)
    except ValueError as error:
        event("clear error")
        assert _names_the_input(str(error)), str(error)
        return
    event("image")
    assert image.mode == "RGB" and min(image.size) >= MIN_IMAGE_SIDE


@pytest.fixture(scope="module")
def tiny():
    model, processor = make_tiny(["a red circle above a blue square", "a green triangle left of a circle"])
    return model, processor


@FUZZ
@given(
    images=st.one_of(st.none(), st.lists(st.one_of(png_bytes, arrays), max_size=3)),
    text=st.one_of(st.none(), st.text(max_size=30), captions),
)
def test_processor_gives_a_batch_or_a_clear_error(tiny, images, text):
    _, processor = tiny
    try:
        batch = processor(images=images, text=text)
    except ValueError as error:
        event("clear error")
        assert any(word in str(error) for word in ("images", "text", "image", "Image", "Pass")), str(error)
        return
    event("batch")
    if images is not None:
        assert batch["pixel_values"].shape == (len(images), 3, 64, 64)
    if text is not None:
        labels = batch["labels"]
        assert labels.shape[0] == (1 if isinstance(text, str) else len(text))
        assert ((labels != -100).sum(dim=1) >= 2).all()  # at least one word, then <eos>


@FUZZ
@given(
    captions=st.one_of(st.text(max_size=40), st.lists(st.text(max_size=40), max_size=5)),
    segmentation=st.sampled_from(SEGMENTATIONS),
)
def test_build_tokenizer_gives_a_tokenizer_or_a_clear_error(captions, segmentation):
    try:
        tokenizer = build_tokenizer(captions, segmentation=segmentation)
    except ValueError as error:
        event("clear error")
        assert str(error).startswith("captions"), str(error)
        return
    event("tokenizer")
    for caption in [captions] if isinstance(captions, str) else captions:
        ids = tokenizer(caption)["input_ids"]
        assert len(ids) >= 2 and ids[-1] == tokenizer.eos_token_id  # words, then <eos>
        assert tokenizer.unk_token_id not in ids  # every training word is in the vocabulary


image_batch_shapes = st.tuples(st.integers(0, 3), st.sampled_from([3, 3, 3, 1, 4]), st.just(64), st.just(64))


@FUZZ
@given(
    shape=st.one_of(image_batch_shapes, st.lists(st.integers(0, 4), min_size=0, max_size=5).map(tuple)),
    dtype=st.sampled_from([torch.float32, torch.float32, torch.float64, torch.int64, torch.bool]),
    num_beams=st.integers(1, 3),
)
def test_generate_gives_sequences_or_a_clear_error(tiny, shape, dtype, num_beams):
    model, _ = tiny
    pixel_values = torch.rand(shape).to(dtype)
    try:
        sequences = model.generate(pixel_values, num_beams=num_beams, max_new_tokens=3)
    except ValueError as error:
        event("clear error")
        assert str(error).startswith("pixel_values"), str(error)
        return
    event("sequences")
    assert sequences.shape[0] == pixel_values.shape[0] and sequences.shape[1] <= 4


@pytest.fixture(scope="module")
def handler(tiny_model_dir):
    return EndpointHandler(str(tiny_model_dir))


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=10),
)
known_names = st.sampled_from(sorted(PARAMETERS))
parameter_names = st.one_of(known_names, known_names, known_names, st.text(max_size=8))
small_numbers = st.one_of(st.integers(-2, 12), st.floats(-1.0, 12.0))


def near_range(name: str) -> st.SearchStrategy:
    """Values in and just outside the range that `PARAMETERS` gives `name`, so both outcomes are explored."""
    kind, low, high, _ = PARAMETERS[name]
    if kind is bool:
        return st.booleans()
    top = 20 if high is None else high
    return st.integers(low - 1, top + 1) if kind is int else st.floats(low - 0.5, top + 0.5)


parameters = st.one_of(
    st.dictionaries(parameter_names, st.one_of(small_numbers, json_values), max_size=3),
    st.fixed_dictionaries({}, optional={name: near_range(name) for name in PARAMETERS}),
)


@settings(FUZZ, max_examples=500)
@given(request_parameters=st.one_of(parameters, json_values))
def test_handler_parameters_are_in_range_or_refused_by_name(request_parameters):
    try:
        checked = EndpointHandler._check_parameters(request_parameters, GenerationConfig())
    except ValueError as error:
        event("clear error")
        assert "parameters" in str(error), str(error)
        return
    event("accepted")
    for key, value in checked.items():
        kind, low, high, low_allowed = PARAMETERS[key]
        assert type(value) is kind, (key, value)
        if kind is not bool:
            assert math.isfinite(value) and (value > low or (low_allowed and value == low)), (key, value)
            assert high is None or value <= high, (key, value)


@FUZZ
@given(
    inputs=st.one_of(png_bytes, png_bytes, png_bytes, image_like, st.lists(png_bytes, max_size=3)),
    request_parameters=st.one_of(parameters, json_values),
)
def test_handler_answers_or_gives_a_clear_error(handler, inputs, request_parameters):
    request = {"inputs": inputs, "parameters": request_parameters}
    try:
        results = handler(request)
    except ValueError as error:
        event("clear error")
        message = str(error)
        assert any(word in message for word in ("inputs", "parameters", "Unsupported")), message
        return
    event("captions")
    checked = handler._check_parameters(request_parameters or {}, handler.model.generation_config)
    images = len(inputs) if isinstance(inputs, list) else 1
    assert len(results) == images * checked.get("num_return_sequences", 1)
    assert all(isinstance(result["generated_text"], str) for result in results)
    for value in checked.values():
        assert not isinstance(value, float) or math.isfinite(value)
