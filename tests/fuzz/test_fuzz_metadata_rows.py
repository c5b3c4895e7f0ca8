"""Property-based fuzzing of training metadata: whatever the rows of an imagefolder's metadata.jsonl hold, the data set
either loads in the canonical form with exactly the well-formed rows, or `load_caption_dataset` raises a `ValueError`
that names the split and the bad rows (row number and metadata line)."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from training.data import load_caption_dataset

IMAGES = {"red.png": (255, 0, 0), "green.png": (0, 255, 0), "blue.png": (0, 0, 255)}
MISSING = "missing.png"
MAX_EXAMPLES = 150  # about 50 ms each on one core (two loads of a tiny folder)

scalars = st.one_of(st.text(max_size=20), st.integers(), st.floats(), st.booleans(), st.none())
long_text = st.builds(lambda word, times: (word + " ") * times, st.text(min_size=1, max_size=8), st.integers(500, 3000))
caption_items = st.one_of(
    st.text(min_size=1, max_size=40),  # mostly good captions, any unicode
    scalars,
    long_text,
    st.lists(scalars, max_size=2),  # nested lists
    st.fixed_dictionaries({"raw": scalars}),  # the Karpathy {"raw": ...} form
    st.dictionaries(st.text(max_size=5), scalars, max_size=2),
)
good_captions = st.lists(st.text(min_size=1, max_size=40).filter(str.strip), min_size=1, max_size=3)
captions = st.one_of(good_captions, st.lists(caption_items, max_size=4), caption_items)


def _row(file_name: str, captions: Any, without_captions: bool) -> dict[str, Any]:
    return {"file_name": file_name} if without_captions else {"file_name": file_name, "captions": captions}


rows = st.lists(
    st.builds(
        _row,
        st.sampled_from([*IMAGES, *IMAGES, MISSING]),  # a missing file in about one row of seven
        captions,
        st.integers(0, 9).map(lambda draw: draw == 0),  # no `captions` key in about one row of ten
    ),
    min_size=1,
    max_size=6,
)


def documented_captions(value: Any) -> list[str] | None:
    """The captions of a row in a documented form (a string, or a list of strings or {"raw": string}), or None when the
    row is bad (wrong type, empty, blank)."""
    items = value if isinstance(value, list) else [value]
    found = [item["raw"] if isinstance(item, dict) and "raw" in item else item for item in items]
    return found if found and all(isinstance(caption, str) and caption.strip() for caption in found) else None


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """An imagefolder with three tiny PNGs in train/; each example writes its own train/metadata.jsonl."""
    root = tmp_path_factory.mktemp("fuzz_data")
    (root / "train").mkdir()
    for name, colour in IMAGES.items():
        Image.new("RGB", (16, 16), colour).save(root / "train" / name)
    return root


@pytest.mark.slow
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows, ascii_only=st.booleans())
@example(  # all good: rows of one image merged, the three documented caption forms, unicode
    rows=[
        {"file_name": "red.png", "captions": ["a red square", "ein rotes Quadrat ✓"]},
        {"file_name": "blue.png", "captions": "one caption"},
        {"file_name": "red.png", "captions": [{"raw": "another red one"}]},
    ],
    ascii_only=False,
)
@example(  # a number among caption strings: pyarrow used to stop here naming no split, file or row
    rows=[{"file_name": "red.png", "captions": ["a"]}, {"file_name": "blue.png", "captions": [42, "b"]}],
    ascii_only=True,
)
def test_metadata_rows_load_or_name_the_bad_rows(folder, rows, ascii_only, caplog):
    caplog.clear()  # the fixture outlives one example
    metadata = folder / "train" / "metadata.jsonl"
    metadata.write_text("".join(json.dumps(row, ensure_ascii=ascii_only) + "\n" for row in rows), encoding="utf-8")
    expected = [documented_captions(row.get("captions")) if row["file_name"] in IMAGES else None for row in rows]
    bad = [index for index, captions in enumerate(expected) if captions is None]
    # Rows of the same image are merged, in the order of their first row.
    merged: dict[str, list[str]] = {}
    for row, captions in zip(rows, expected, strict=True):
        if captions is not None:
            merged.setdefault(row["file_name"], []).extend(captions)
    event("all rows good" if not bad else "some rows bad" if merged else "all rows bad")

    if not any("captions" in row for row in rows):  # no caption column at all: a layout error, not a bad row
        with pytest.raises(ValueError, match=rf"^No caption column found in {re.escape(str(folder))} \[train\]"):
            load_caption_dataset(str(folder), "train", skip_bad_examples=True)
        return
    for skip in (False, True):
        if bad and (not skip or not merged):
            with pytest.raises(ValueError) as error:
                load_caption_dataset(str(folder), "train", skip_bad_examples=skip)
            message = str(error.value)
            some = f"{len(bad)} bad example(s) of {len(rows)} in" if merged else f"All {len(rows)} example(s) of"
            assert message.startswith(f"{some} {folder} [train]")
            for index in bad[:10]:  # the error lists the first ten
                assert f"[train] row {index} (" in message and f"{metadata} line {index + 1})" in message
            continue
        with caplog.at_level(logging.WARNING, logger="training.data"):
            dataset = load_caption_dataset(str(folder), "train", skip_bad_examples=skip)
        assert dataset.column_names == ["image", "captions", "image_id"]
        assert dataset["image_id"] == list(merged) and dataset["captions"] == list(merged.values())
        assert [image.getpixel((0, 0)) for image in dataset["image"]] == [IMAGES[name] for name in merged]
        if bad:
            assert f"Skipped {len(bad)} bad example(s) of {len(rows)} in {folder} [train]" in caplog.text
