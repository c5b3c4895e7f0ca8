"""Careless input at the library's entry points: arrays of every common form, base64 as other tools write it, empty
batches, mismatched captions, captions without words, and a tokenizer from another folder. Each either works or
raises a `ValueError` that names the input and the expected form."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoProcessor, pipeline

from show_attend_tell import ShowAttendTellProcessor, build_tokenizer, load_image
from tests.conftest import make_tiny

GRADIENT = np.linspace(0.0, 1.0, 24 * 32).reshape(24, 32)  # values 0..1, mean 0.5


def mean_brightness(image: Image.Image) -> float:
    return float(np.asarray(image, dtype=np.float64).mean())


@pytest.mark.parametrize(
    "array",
    [
        GRADIENT.astype(np.float32),  # float HxW in 0..1
        GRADIENT.astype(np.float64)[None],  # float 1xHxW
        np.stack([GRADIENT] * 3).astype(np.float32),  # float CxHxW
        (GRADIENT * 255).astype(np.int64),  # int64 HxW in 0..255
        np.stack([GRADIENT * 255] * 3, axis=-1).astype(np.int64),  # int64 HxWxC
        (GRADIENT * 65535).astype(np.uint16),  # 16-bit
        (GRADIENT * 255).astype(np.float32),  # float in 0..255
    ],
    ids=["float-hw", "float-1hw", "float-chw", "int64-hw", "int64-hwc", "uint16", "float-0-255"],
)
def test_arrays_of_common_forms_keep_their_brightness(array):
    image = load_image(array)
    assert image.mode == "RGB" and image.size == (32, 24)
    assert 120 < mean_brightness(image) < 135  # not black, not white: the gradient's middle grey


def test_pil_float_images_in_0_1_are_not_black():
    image = load_image(Image.fromarray(GRADIENT.astype(np.float32), mode="F"))
    assert 120 < mean_brightness(image) < 135


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((2, 3, 24, 32)), r"image array of shape \(2, 3, 24, 32\): expected HxW, HxWxC or CxHxW"),
        (np.zeros((24, 32, 2)), r"image array of shape \(24, 32, 2\)"),
        (np.array([["a"] * 32] * 24), "image array: expected numbers, got dtype <U1"),
        (np.full((24, 32), np.nan), "image array holds NaN or infinite values"),
        (-np.ones((24, 32)), "image array values must not be negative"),
        (np.full((24, 32), 300.0), "image array values up to 300: expected floats in 0..1 or 0..255"),
        (np.zeros((0, 32)), r"image array of shape \(0, 32\)"),
    ],
)
def test_arrays_of_other_forms_are_refused_by_name(array, expected):
    with pytest.raises(ValueError, match=expected):
        load_image(array)


def test_base64_with_line_breaks_or_the_url_safe_alphabet(tmp_path):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (250, 10, 10)).save(buffer, "PNG")
    data = buffer.getvalue()
    for text in (
        base64.encodebytes(data).decode(),  # line breaks every 76 characters
        base64.urlsafe_b64encode(data).decode(),
        base64.urlsafe_b64encode(data).decode().rstrip("="),  # padding dropped, as in JWTs and URLs
        "data:image/png;base64," + base64.encodebytes(data).decode(),
    ):
        assert load_image(text).size == (40, 20)
    with pytest.raises(ValueError, match="Image file not found: "):
        load_image("x" * 5000 + "!")  # neither a file nor base64: no "File name too long" from the OS


@pytest.fixture(scope="module")
def tiny():
    return make_tiny(["a red circle above a blue square", "a green triangle"])


def test_empty_batches_and_tensors_of_the_wrong_form(tiny, coco_train_rows, tmp_path):
    model, processor = tiny
    with pytest.raises(ValueError, match="images: empty list; pass at least one image"):
        processor(images=[])
    photo = str(coco_train_rows[0]["path"])
    with pytest.raises(ValueError, match="text: 2 captions for 1 images; pass one caption per image"):
        processor(images=[photo], text=["a red circle", "a green triangle"])
    pixel_values = processor(images=[photo])["pixel_values"]
    for bad, expected in [
        (pixel_values[:0], r"pixel_values: expected shape \(batch_size >= 1, 3, height, width\), got \(0, 3"),
        (pixel_values[0], r"got \(3, 64, 64\) \(one image without its batch dimension\? use pixel_values\[None\]\)"),
        (None, "pixel_values: missing; pass the processor's pixel_values"),
        (pixel_values.long(), "pixel_values: expected a float tensor .* got torch.int64"),
        (pixel_values[..., :16, :16], r"pixel_values: images of \(16, 16\) pixels are smaller than the backbone's"),
    ]:
        with pytest.raises(ValueError, match=expected):
            model.generate(bad, max_new_tokens=2)
    with pytest.raises(ValueError, match=r"pixel_values: expected shape"):
        model(pixel_values=pixel_values[0], labels=processor(text="a red circle")["labels"])

    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    with pytest.raises(ValueError, match="images: empty list; pass at least one image"):
        pipeline(model=str(folder), trust_remote_code=True)([])


def test_build_tokenizer_takes_one_caption_as_one_caption():
    assert build_tokenizer("dog").get_vocab().keys() == {"<pad>", "<bos>", "<eos>", "<unk>", "dog"}
    assert {"a", "red", "circle"} <= build_tokenizer("a red circle").get_vocab().keys()


@pytest.mark.parametrize("caption", ["...", "\u200b", "!?", " \u200b\u200d "])
def test_captions_without_words_are_refused_not_trained_as_empty(tiny, caption):
    with pytest.raises(ValueError, match=r"captions\[1\]: caption .* has no words the tokenizer keeps"):
        build_tokenizer(["a red circle", caption])
    _, processor = tiny
    with pytest.raises(ValueError, match=r"text\[1\]: caption .* has no words the tokenizer keeps"):
        processor(text=["a red circle", caption])


def test_processor_without_special_tokens_is_refused_at_load(tiny, tmp_path):
    _, processor = tiny
    processor.save_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").unlink()
    with pytest.raises(ValueError, match=r"tokenizer: \[.*'bos_token', 'eos_token', 'unk_token'\] not set \(a saved"):
        AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)


def test_model_and_tokenizer_from_different_folders_are_refused(tiny, tmp_path):
    model, processor = tiny
    other = ShowAttendTellProcessor(processor.image_processor, build_tokenizer(["completely other words"]))
    with pytest.raises(ValueError, match="the tokenizer has 7 tokens but the model's config.vocab_size is 12"):
        other.check_model_config(model.config)
    model.save_pretrained(tmp_path)
    other.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="load the model and the processor from the same folder"):
        pipeline(model=str(tmp_path), trust_remote_code=True)


CAPTIONS_WITHOUT_SPACES = ["一只猫坐在桌子上", "两只狗在草地上跑", "猫和狗 🐱🐶"]


def test_character_segmentation_handles_scripts_without_spaces_and_emoji(tmp_path):
    word_level = build_tokenizer(CAPTIONS_WITHOUT_SPACES)
    assert "一只猫坐在桌子上" in word_level.get_vocab()  # the problem: one token per caption
    tokenizer = build_tokenizer(CAPTIONS_WITHOUT_SPACES + ["a cat on a table"], segmentation="character")
    assert {"猫", "狗", "🐱", "🐶", "a", "\u2581"} <= tokenizer.get_vocab().keys()
    model, word_processor = make_tiny(["x"])
    processor = ShowAttendTellProcessor(word_processor.image_processor, tokenizer)
    processor.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path, trust_remote_code=True)
    labels = loaded(text=CAPTIONS_WITHOUT_SPACES + ["a cat on a table"])["labels"]
    assert (labels[0] != -100).sum() == len("一只猫坐在桌子上") + 1  # one token per character, then <eos>
    assert loaded.batch_decode(labels) == CAPTIONS_WITHOUT_SPACES + ["a cat on a table"]
    with pytest.raises(ValueError, match="segmentation: expected one of"):
        build_tokenizer(["a cat"], segmentation="bpe")


def test_character_segmentation_decodes_generated_ids(tmp_path):
    tokenizer = build_tokenizer(CAPTIONS_WITHOUT_SPACES, segmentation="character")
    ids = tokenizer("两只狗在草地上跑")["input_ids"]
    generated = torch.tensor([[1, *ids, 0, 0]])  # <bos> ... <eos> <pad> <pad>, as generate() returns them
    _, word_processor = make_tiny(["x"])
    processor = ShowAttendTellProcessor(word_processor.image_processor, tokenizer)
    assert processor.batch_decode(generated) == ["两只狗在草地上跑"]
