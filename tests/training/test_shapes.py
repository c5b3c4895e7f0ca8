"""The built-in synthetic shapes data set: deterministic, captions true to the drawn scene, disjoint splits."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from training.shapes import COLORS, GRID, SHAPES, make_shapes_dataset, shapes_splits

RELATIONS = ("above", "below", "to the left of", "to the right of")


@pytest.fixture(scope="module")
def scenes():
    return make_shapes_dataset(60, seed=11)


def _centre(box):
    x, y, w, h = box
    return x + w / 2, y + h / 2


def _pixel_hash(image) -> str:
    return hashlib.sha256(np.asarray(image).tobytes()).hexdigest()


def _nearest_colour(rgb) -> str:
    return min(COLORS, key=lambda name: float(np.sum((np.asarray(COLORS[name]) - rgb) ** 2)))


def test_canonical_columns_and_sizes(scenes):
    assert scenes.column_names == ["image", "captions", "image_id", "objects"]
    assert len(set(scenes["image_id"])) == len(scenes)
    row = scenes[0]
    assert row["image"].mode == "RGB" and row["image"].size == (128, 128)
    assert 3 <= len(row["captions"]) <= 5 and all(isinstance(caption, str) for caption in row["captions"])
    small = make_shapes_dataset(2, seed=0, image_size=64)
    assert small[0]["image"].size == (64, 64)


def test_deterministic_given_seed():
    first, again, other = (make_shapes_dataset(4, seed=seed) for seed in (5, 5, 6))
    assert [_pixel_hash(image) for image in first["image"]] == [_pixel_hash(image) for image in again["image"]]
    assert first["captions"] == again["captions"] and first["objects"] == again["objects"]
    assert {_pixel_hash(image) for image in first["image"]}.isdisjoint(_pixel_hash(image) for image in other["image"])


def test_captions_describe_the_drawn_shapes(scenes):
    for row in scenes:
        pixels = np.asarray(row["image"], dtype=np.float64)
        objects = row["objects"]
        assert len(objects["bbox"]) == 2 and set(objects["category"]) <= set(SHAPES)
        names = []
        for box, shape, colour in zip(objects["bbox"], objects["category"], objects["color"], strict=True):
            x, y = _centre(box)
            # the drawn colour at the shape's centre is the colour the captions name
            assert _nearest_colour(pixels[int(y), int(x)]) == colour, (row["image_id"], box, colour)
            names.append(f"{colour} {shape}")
        caption = row["captions"][0]
        assert caption.startswith(f"a {names[0]} ") and caption.endswith(f" a {names[1]}")
        relation = caption[len(f"a {names[0]} ") : -len(f" a {names[1]}")]
        assert relation in RELATIONS
        (x1, y1), (x2, y2) = (_centre(box) for box in objects["bbox"])
        expected = {"above": y1 < y2, "below": y1 > y2, "to the left of": x1 < x2, "to the right of": x1 > x2}
        dominant_vertical = abs(y2 - y1) > abs(x2 - x1)
        assert expected[relation] and dominant_vertical == (relation in ("above", "below")), (caption, objects)
        # every phrasing names both shapes
        assert all(names[0] in text and names[1] in text for text in row["captions"])


def test_shapes_fall_in_different_attention_cells(scenes):
    cell = 128 / GRID
    for row in scenes:
        cells = {tuple(int(coordinate // cell) for coordinate in _centre(box)) for box in row["objects"]["bbox"]}
        assert len(cells) == 2, row["objects"]


def test_caption_vocabulary_is_small(scenes):
    words = " ".join(caption for captions in scenes["captions"] for caption in captions).split()
    assert set(COLORS) | set(SHAPES) <= set(words)
    assert len(set(words)) <= 20


def test_splits_are_disjoint():
    splits = shapes_splits(seed=0, num_train=40, num_validation=10, num_test=10)
    assert {name: len(split) for name, split in splits.items()} == {"train": 40, "validation": 10, "test": 10}
    hashes = {name: {_pixel_hash(image) for image in split["image"]} for name, split in splits.items()}
    ids = {name: set(split["image_id"]) for name, split in splits.items()}
    for first, second in (("train", "validation"), ("train", "test"), ("validation", "test")):
        assert hashes[first].isdisjoint(hashes[second])
        assert ids[first].isdisjoint(ids[second])
    # the split is generated on its own: the same validation scenes whatever the train size
    again = shapes_splits(seed=0, num_train=5, num_validation=10, num_test=1)["validation"]
    assert list(again["image_id"]) == list(splits["validation"]["image_id"])
    assert [_pixel_hash(image) for image in again["image"]] == [_pixel_hash(i) for i in splits["validation"]["image"]]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_images"):
        make_shapes_dataset(0, seed=0)
    with pytest.raises(ValueError, match="image_size"):
        make_shapes_dataset(1, seed=0, image_size=30)
