"""Image loading (every PIL mode, bad files), tokenizer and processor behaviour."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from show_attend_tell import ShowAttendTellProcessor, build_image_processor, build_tokenizer, load_image

RED = (200, 30, 40)


def png_with_header_size(width: int, height: int) -> bytes:
    """A tiny PNG file whose header claims `width` x `height` pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0")) + chunk(b"IEND", b"")


def test_modes_convert_to_correct_rgb(tmp_path):
    rgb = Image.new("RGB", (16, 12), RED)
    cases = {
        "gray.png": Image.new("L", (16, 12), 77),
        "rgba.png": Image.new("RGBA", (16, 12), RED + (255,)),
        "palette.png": rgb.convert("P", palette=Image.Palette.ADAPTIVE),
        "cmyk.jpg": rgb.convert("CMYK"),
        "gray16.png": Image.fromarray(np.full((12, 16), 52428, dtype=np.uint16)),
    }
    for name, image in cases.items():
        image.save(tmp_path / name)
    assert load_image(tmp_path / "gray.png").getpixel((3, 3)) == (77, 77, 77)
    assert load_image(tmp_path / "rgba.png").getpixel((3, 3)) == RED
    assert load_image(tmp_path / "palette.png").getpixel((3, 3)) == pytest.approx(RED, abs=8)
    assert load_image(tmp_path / "cmyk.jpg").getpixel((3, 3)) == pytest.approx(RED, abs=12)
    assert load_image(tmp_path / "gray16.png").getpixel((3, 3)) == (204, 204, 204)
    assert all(load_image(tmp_path / name).mode == "RGB" for name in cases)


def test_transparent_pixels_become_white_not_black(tmp_path):
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert load_image(image).getpixel((5, 5)) == (255, 255, 255)
    image.convert("LA").save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png").getpixel((5, 5)) == (255, 255, 255)


def test_other_sources(tmp_path):
    image = Image.new("RGB", (20, 10), RED)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    data = buffer.getvalue()
    assert load_image(data).size == (20, 10)
    assert load_image(base64.b64encode(data).decode()).getpixel((1, 1)) == RED
    assert load_image("data:image/png;base64," + base64.b64encode(data).decode()).size == (20, 10)
    assert load_image(np.zeros((10, 20, 3), dtype=np.uint8)).size == (20, 10)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "missing.jpg", "not found"),
        (lambda p: (p / "notes.jpg").write_text("hello, I am text") and p / "notes.jpg", "not a readable image"),
        (lambda p: p, "directory"),
        (lambda p: Image.new("RGB", (1, 1)).save(p / "dot.png") or p / "dot.png", "too small"),
        (lambda p: (p / "bomb.png").write_bytes(png_with_header_size(30000, 30000)) and p / "bomb.png", "too large"),
    ],
)
def test_bad_images_give_clear_errors_naming_the_input(tmp_path, make, message):
    source = make(tmp_path)
    with pytest.raises(ValueError, match=message) as error:
        load_image(source)
    assert str(source) in str(error.value)


def test_truncated_jpeg_is_reported(tmp_path, coco_train_rows):
    data = coco_train_rows[0]["path"].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="cut.jpg"):
        load_image(tmp_path / "cut.jpg")


def test_tokenizer_normalises_and_maps_unknown_words():
    tokenizer = build_tokenizer(["A dog runs.", "a dog, a cat!", "Café crème"], min_frequency=1)
    ids = tokenizer("A DOG runs; a zebra")["input_ids"]
    tokens = tokenizer.convert_ids_to_tokens(ids)
    assert tokens == ["a", "dog", "runs", "a", "<unk>", "<eos>"]
    assert tokenizer.convert_ids_to_tokens(tokenizer("CAFÉ")["input_ids"]) == ["café", "<eos>"]
    rare = build_tokenizer(["a dog", "a cat", "a dog"], min_frequency=2)
    assert rare.convert_ids_to_tokens(rare("a cat")["input_ids"]) == ["a", "<unk>", "<eos>"]
    assert [rare.pad_token_id, rare.bos_token_id, rare.eos_token_id, rare.unk_token_id] == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("captions", "message"),
    [([], "non-empty list"), (["a dog", "  "], r"\[1\]: caption is empty"), (["a dog", 3], r"\[1\]: .*int")],
)
def test_bad_captions_give_clear_errors(captions, message):
    with pytest.raises(ValueError, match=message):
        build_tokenizer(captions)
    processor = ShowAttendTellProcessor(build_image_processor("resnet10t", 32), build_tokenizer(["a dog"]))
    with pytest.raises(ValueError, match=message):
        processor(text=captions)


def test_processor_builds_inputs_and_decodes_clean_text(coco_train_rows):
    tokenizer = build_tokenizer(["a dog runs on the grass", "a cat"])
    processor = ShowAttendTellProcessor(build_image_processor("tf_efficientnet_lite0", 96), tokenizer)
    batch = processor(images=[coco_train_rows[0]["path"], coco_train_rows[1]["path"]], text=["a dog runs", "a cat"])
    assert batch["pixel_values"].shape == (2, 3, 96, 96)
    # tf_efficientnet_lite0 normalises with mean 0.5, std 0.5: values lie in [-1, 1]
    assert batch["pixel_values"].min() >= -1.0001 and batch["pixel_values"].max() <= 1.0001
    assert batch["labels"][1].tolist()[-1] == -100
    bos, eos, pad = tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id
    sequences = torch.tensor(
        [[bos] + tokenizer("a dog runs")["input_ids"], [bos, *tokenizer("a cat")["input_ids"], pad]]
    )
    assert sequences[0, -1] == eos
    assert processor.batch_decode(sequences) == ["a dog runs", "a cat"]
