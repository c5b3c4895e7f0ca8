"""Loading caption data sets into the canonical form: local imagefolder, caption layouts, presets, bad data."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from pathlib import Path

import pytest
from datasets import Dataset, Features, Image, List, Value
from PIL import Image as PILImage

from tests.conftest import read_metadata
from training.data import load_caption_dataset
from training.presets import PRESETS

CANONICAL = ["image", "captions", "image_id"]


@pytest.fixture(scope="module")
def photos(coco_mini) -> list[Path]:
    """Three real photos from coco-mini train (read in place, copied only into tmp folders)."""
    return [row["path"] for row in read_metadata(coco_mini / "train")[:3]]


def _write_parquet(folder: Path, split_files: dict[str, dict], features: Features, readme: str | None = None) -> Path:
    """A local data set folder holding one parquet file per split, like a Hub repo (`data/{split}-*.parquet`)."""
    for split, columns in split_files.items():
        (folder / "data").mkdir(parents=True, exist_ok=True)
        Dataset.from_dict(columns, features=features).to_parquet(folder / "data" / f"{split}-00000-of-00001.parquet")
    if readme is not None:
        (folder / "README.md").write_text(readme)
    return folder


def _image(path: Path) -> dict:
    return {"bytes": path.read_bytes(), "path": None}


def _imagefolder(folder: Path, photos: list[Path], rows: list[dict]) -> Path:
    """An imagefolder `train` split: real photos copied in, `rows` as metadata (a `file_name` may be missing)."""
    split = folder / "train"
    split.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copy(photo, split / photo.name)
    (split / "metadata.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


# --------------------------------------------------------------------------------------------------------------------
# Real photos and layouts
# --------------------------------------------------------------------------------------------------------------------


def test_coco_mini_train_in_canonical_form(coco_mini):
    dataset = load_caption_dataset(str(coco_mini), "train")
    metadata = read_metadata(coco_mini / "train")
    assert len(dataset) == len(metadata) == 308
    assert dataset.column_names[:3] == CANONICAL
    assert all(len(captions) == 5 for captions in dataset["captions"])
    assert dataset["captions"] == [row["captions"] for row in metadata]
    assert len(set(dataset["image_id"])) == 308
    first = dataset[0]
    assert isinstance(first["image"], PILImage.Image)
    assert first["image"].size == PILImage.open(metadata[0]["path"]).size
    assert first["image_id"] == metadata[0]["source_id"]
    assert first["objects"]["category"] == metadata[0]["objects"]["category"]


def test_streaming_gives_the_same_rows(coco_mini):
    stream = load_caption_dataset(str(coco_mini), "validation", streaming=True)
    rows = list(stream)
    metadata = read_metadata(coco_mini / "validation")
    assert [row["captions"] for row in rows] == [row["captions"] for row in metadata]
    assert isinstance(rows[0]["image"], PILImage.Image) and rows[0]["image_id"] == metadata[0]["source_id"]


def test_fingerprint_follows_the_files_not_their_place_or_time(tmp_path, photos):
    """The feature cache is keyed by the data set's fingerprint: a copy elsewhere with new modification times keeps
    it (no re-encoding after a copy), while one changed byte in one image changes it."""
    rows = [{"file_name": photo.name, "captions": ["a photo"]} for photo in photos]
    first = _imagefolder(tmp_path / "first", photos, rows)
    fingerprint = load_caption_dataset(str(first), "train")._fingerprint
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(first, copy)  # copytree keeps modification times: give the copy new ones
    for path in (copy / "train").iterdir():
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load_caption_dataset(str(copy), "train")._fingerprint == fingerprint

    image = copy / "train" / photos[1].name
    content = bytearray(image.read_bytes())
    content[-3] ^= 1  # inside the JPEG's entropy-coded data: same size, still readable
    image.write_bytes(bytes(content))
    assert load_caption_dataset(str(copy), "train")._fingerprint != fingerprint


def test_builtin_shapes_when_no_dataset_name():
    dataset = load_caption_dataset(None, "validation", shapes_num_images=6, shapes_seed=2)
    assert len(dataset) == 6 and dataset.column_names[:3] == CANONICAL
    assert dataset[0]["image"].size == (128, 128) and "objects" in dataset.column_names
    assert dataset["image_id"] != load_caption_dataset(None, "test", shapes_num_images=6, shapes_seed=2)["image_id"]


def test_one_caption_per_row_is_grouped_by_image_id(tmp_path, photos):
    rows = [(0, "a first caption"), (1, "b first caption"), (0, "a second caption"), (2, "c only caption")]
    rows += [(1, "b second caption"), (0, "a third caption")]
    features = Features({"image": Image(), "caption": Value("string"), "image_id": Value("int64")})
    columns = {
        "image": [_image(photos[index]) for index, _ in rows],
        "caption": [caption for _, caption in rows],
        "image_id": [index for index, _ in rows],
    }
    folder = _write_parquet(tmp_path / "per_row", {"train": columns}, features)
    dataset = load_caption_dataset(str(folder), "train")
    assert dataset["image_id"] == ["0", "1", "2"]
    assert dataset["captions"] == [
        ["a first caption", "a second caption", "a third caption"],
        ["b first caption", "b second caption"],
        ["c only caption"],
    ]
    assert [image.size for image in dataset["image"]] == [PILImage.open(photo).size for photo in photos]


def test_karpathy_nested_sentences(tmp_path, photos):
    sentence = {"raw": Value("string"), "tokens": List(Value("string")), "sentid": Value("int64")}
    features = Features({"img": Image(), "sentences": List(sentence), "cocoid": Value("int64")})
    columns = {
        "img": [_image(photo) for photo in photos[:2]],
        "sentences": [
            [
                {"raw": "A dog runs.", "tokens": ["a", "dog", "runs"], "sentid": 1},
                {"raw": "A dog.", "tokens": [], "sentid": 2},
            ],
            [{"raw": "Two cats.", "tokens": ["two", "cats"], "sentid": 3}],
        ],
        "cocoid": [11, 12],
    }
    folder = _write_parquet(tmp_path / "karpathy", {"test": columns}, features)
    dataset = load_caption_dataset(str(folder), "test", image_column="img", caption_column="sentences")
    assert dataset["captions"] == [["A dog runs.", "A dog."], ["Two cats."]]
    assert dataset["image_id"] == ["11", "12"]


# --------------------------------------------------------------------------------------------------------------------
# Presets: offline tables with each Hub data set's schema
# --------------------------------------------------------------------------------------------------------------------


def test_flickr8k_preset(tmp_path, photos):
    features = Features({"image": Image(), **{f"caption_{index}": Value("string") for index in range(5)}})
    columns = {"image": [_image(photo) for photo in photos[:2]]}
    columns |= {f"caption_{index}": [f"photo one caption {index}", f"photo two caption {index}"] for index in range(5)}
    folder = _write_parquet(tmp_path / "flickr8k", {"train": columns, "validation": columns}, features)
    dataset = load_caption_dataset(str(folder), "validation", preset="flickr8k")
    assert dataset["captions"][1] == [f"photo two caption {index}" for index in range(5)]
    assert dataset.column_names == CANONICAL and len(set(dataset["image_id"])) == 2


def test_flickr30k_preset_maps_validation_to_val(tmp_path, photos):
    features = Features(
        {
            "image": Image(),
            "caption": List(Value("string")),
            "sentids": List(Value("string")),
            "split": Value("string"),
            "img_id": Value("string"),
            "filename": Value("string"),
        }
    )
    columns = {
        "image": [_image(photo) for photo in photos[:2]],
        "caption": [["a man on a bike", "a cyclist"], ["a dog in snow"]],
        "sentids": [["0", "1"], ["2"]],
        "split": ["val", "val"],
        "img_id": ["7", "8"],
        "filename": ["1.jpg", "2.jpg"],
    }
    readme = "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: val\n    path: data/val-*\n---\n"
    folder = _write_parquet(tmp_path / "flickr30k", {"val": columns}, features, readme=readme)
    dataset = load_caption_dataset(str(folder), "validation", preset="flickr30k")
    assert dataset["captions"] == [["a man on a bike", "a cyclist"], ["a dog in snow"]]
    assert dataset["image_id"] == ["7", "8"]
    assert PRESETS["flickr30k"].split_names["validation"] == "val"


def test_coco_karpathy_preset_reads_images_from_image_dir(tmp_path, photos):
    image_dir = tmp_path / "coco"
    (image_dir / "val2014").mkdir(parents=True)
    for photo in photos[:2]:
        shutil.copy(photo, image_dir / "val2014" / f"COCO_val2014_{photo.name}")
    features = Features(
        {
            "filepath": Value("string"),
            "sentids": List(Value("int64")),
            "filename": Value("string"),
            "imgid": Value("int64"),
            "split": Value("string"),
            "sentences": List(Value("string")),
            "cocoid": Value("int64"),
            "url": Value("string"),
        }
    )
    columns = {
        "filepath": ["val2014", "val2014"],
        "sentids": [[1, 2], [3]],
        "filename": [f"COCO_val2014_{photo.name}" for photo in photos[:2]],
        "imgid": [0, 1],
        "split": ["test", "test"],
        "sentences": [["a kitchen with a table", "a dining room"], ["a bed in a room"]],
        "cocoid": [139, 632],
        "url": [f"http://images.cocodataset.org/val2014/COCO_val2014_{photo.name}" for photo in photos[:2]],
    }
    folder = _write_parquet(tmp_path / "coco_karpathy", {"test": columns}, features)
    with pytest.raises(ValueError, match="image_dir"):
        load_caption_dataset(str(folder), "test", preset="coco-karpathy")
    dataset = load_caption_dataset(str(folder), "test", preset="coco-karpathy", image_dir=str(image_dir))
    assert dataset["image_id"] == ["139", "632"]
    assert dataset["captions"] == columns["sentences"]
    assert dataset[1]["image"].size == PILImage.open(photos[1]).size


def test_column_errors_name_the_columns(coco_mini):
    with pytest.raises(ValueError, match=r"not found .*captions"):
        load_caption_dataset(str(coco_mini), "validation", caption_column="caption_0")
    with pytest.raises(ValueError, match="Unknown dataset preset 'coco'"):
        load_caption_dataset(None, "train", preset="coco")


# --------------------------------------------------------------------------------------------------------------------
# Bad data
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture
def bad_folder(tmp_path, photos) -> Path:
    """Two good rows, then a broken file, a missing file, an empty caption list and a non-string caption."""
    rows = [
        {"file_name": photos[0].name, "captions": ["a good caption"], "source_id": "good-0"},
        {"file_name": "broken.jpg", "captions": ["fine"], "source_id": "broken"},
        {"file_name": "missing.jpg", "captions": ["fine"], "source_id": "missing"},
        {"file_name": photos[1].name, "captions": [], "source_id": "no-captions"},
        {"file_name": photos[2].name, "captions": ["fine", None], "source_id": "null-caption"},
        {"file_name": photos[0].name, "captions": ["another good caption"], "source_id": "good-1"},
    ]
    folder = _imagefolder(tmp_path / "data", photos, rows)
    (folder / "train" / "broken.jpg").write_bytes(b"this is not a jpeg")
    return folder


EXPECTED_PROBLEMS = {
    1: ("broken", "broken.jpg", "not a readable image"),
    2: ("missing", "missing.jpg", "not found"),
    3: ("no-captions", None, "non-empty list"),
    4: ("null-caption", None, "must be a string"),
}


def test_each_bad_example_is_named_in_the_error(bad_folder):
    with pytest.raises(ValueError) as error:
        load_caption_dataset(str(bad_folder), "train")
    message = str(error.value)
    assert message.startswith("4 bad example(s) of 6") and "skip_bad_examples" in message
    lines = {int(line.split(" row ")[1].split()[0]): line for line in message.splitlines() if " row " in line}
    assert sorted(lines) == sorted(EXPECTED_PROBLEMS)
    for index, (image_id, file_name, problem) in EXPECTED_PROBLEMS.items():
        assert f"image id '{image_id}'" in lines[index] and problem in lines[index]
        assert file_name is None or file_name in lines[index]


@pytest.mark.parametrize("index", sorted(EXPECTED_PROBLEMS))
def test_a_single_bad_example_errors(tmp_path, photos, index):
    image_id, file_name, problem = EXPECTED_PROBLEMS[index]
    rows = {
        1: {"file_name": "broken.jpg", "captions": ["fine"]},
        2: {"file_name": "missing.jpg", "captions": ["fine"]},
        3: {"file_name": photos[1].name, "captions": []},
        4: {"file_name": photos[1].name, "captions": ["fine", ""]},
    }
    folder = _imagefolder(tmp_path / "data", photos, [{"file_name": photos[0].name, "captions": ["ok"]}, rows[index]])
    (folder / "train" / "broken.jpg").write_bytes(b"\x89PNG truncated")
    expected = "caption is empty" if index == 4 else problem
    with pytest.raises(ValueError, match=r"row 1 \(image id '[^']+'(, file [^)]*)?\): .*" + expected):
        load_caption_dataset(str(folder), "train")


def test_skip_bad_examples_drops_and_counts(bad_folder, caplog):
    with caplog.at_level(logging.WARNING, logger="training.data"):
        dataset = load_caption_dataset(str(bad_folder), "train", skip_bad_examples=True)
    assert dataset["image_id"] == ["good-0", "good-1"]
    assert dataset["captions"] == [["a good caption"], ["another good caption"]]
    assert "Skipped 4 bad example(s) of 6" in caplog.text and "missing.jpg" in caplog.text


def test_streaming_bad_examples(bad_folder, caplog):
    with pytest.raises(ValueError, match=r"row 1 \(image id 'broken', file .*broken.jpg, .*metadata.jsonl line 2\)"):
        list(load_caption_dataset(str(bad_folder), "train", streaming=True))
    with caplog.at_level(logging.WARNING, logger="training.data"):
        rows = list(load_caption_dataset(str(bad_folder), "train", streaming=True, skip_bad_examples=True))
    assert [row["image_id"] for row in rows] == ["good-0", "good-1"]
    assert caplog.text.count("Skipping bad example") == 4


# pyarrow reads a metadata.jsonl column with the type of its first rows and stops at a row of another type with a
# traceback naming no row; each of these rows must reach the row checks instead.
WRONG_CAPTIONS = {
    "number among strings": ([42, "a dog"], "captions[0]: caption must be a string, got int 42"),
    "a number": (42, "captions[0]: caption must be a string, got int 42"),
    "nested list": ([["a dog"]], "captions[0]: caption must be a string, got list ['a dog']"),
    "object": ({"text": "a dog"}, "captions[0]: caption must be a string, got dict"),
}


@pytest.mark.parametrize("kind", sorted(WRONG_CAPTIONS))
def test_caption_of_the_wrong_type_names_split_row_line_and_file(tmp_path, photos, kind):
    value, problem = WRONG_CAPTIONS[kind]
    rows = [{"file_name": photos[0].name, "captions": ["a cat"]}, {"file_name": photos[1].name, "captions": value}]
    folder = _imagefolder(tmp_path / "data", photos, rows)
    with pytest.raises(ValueError) as error:
        load_caption_dataset(str(folder), "train")
    message = str(error.value)
    assert message.startswith(f"1 bad example(s) of 2 in {folder} [train]") and "skip_bad_examples" in message
    assert f"row 1 (image id '{photos[1].name}', file {folder / 'train' / photos[1].name}" in message
    assert f"{folder / 'train' / 'metadata.jsonl'} line 2): {problem}" in message


def test_skip_bad_examples_drops_captions_of_the_wrong_type(tmp_path, photos, caplog):
    rows = [
        {"file_name": photos[0].name, "captions": ["a cat"]},
        {"file_name": photos[1].name, "captions": [42, "a dog"]},
        {"file_name": photos[2].name, "captions": "one caption as a string"},  # the one-caption-per-row form
    ]
    folder = _imagefolder(tmp_path / "data", photos, rows)
    with caplog.at_level(logging.WARNING, logger="training.data"):
        dataset = load_caption_dataset(str(folder), "train", skip_bad_examples=True)
    assert dataset["captions"] == [["a cat"], ["one caption as a string"]]
    assert dataset["image_id"] == [photos[0].name, photos[2].name]
    assert "Skipped 1 bad example(s) of 3" in caplog.text and "got int 42" in caplog.text
    with caplog.at_level(logging.WARNING, logger="training.data"):
        stream = list(load_caption_dataset(str(folder), "train", streaming=True, skip_bad_examples=True))
    assert [row["captions"] for row in stream] == dataset["captions"]


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('{"file_name": "a.jpg", "captions": ["x"]', "not valid JSON"),
        ('["a.jpg", "x"]', "got list ['a.jpg', 'x']; expected one JSON object per line"),
        ('{"file_name": "../a.jpg", "captions": ["x"]}', "file_name must be a path relative to"),
        ('{"file_name": 7, "captions": ["x"]}', "file_name must be a path relative to"),
        ('{"file_name": "a.jpg", "captions": ["\\ud800"]}', "not valid UTF-8 text"),
    ],
)
def test_a_line_that_is_no_metadata_row_is_named(tmp_path, photos, line, problem):
    folder = _imagefolder(tmp_path / "data", photos, [{"file_name": photos[0].name, "captions": ["a cat"]}])
    metadata = folder / "train" / "metadata.jsonl"
    metadata.write_text(metadata.read_text() + line + "\n")
    with pytest.raises(ValueError, match=f"^{re.escape(f'{folder} [train]: {metadata}')} line 2: {re.escape(problem)}"):
        load_caption_dataset(str(folder), "train", skip_bad_examples=True)


def test_a_split_with_no_good_example_is_an_error_even_when_skipping(tmp_path, photos):
    rows = [{"file_name": "missing.jpg", "captions": ["a cat"]}, {"file_name": photos[0].name, "captions": [7]}]
    folder = _imagefolder(tmp_path / "data", photos, rows)
    for skip in (False, True):  # an empty split would only fail later, with no word about the data
        with pytest.raises(ValueError, match=rf"^All 2 example\(s\) of {re.escape(str(folder))} \[train\] are bad"):
            load_caption_dataset(str(folder), "train", skip_bad_examples=skip)
