"""Pointing-game grounding score: hand-made attention maps and boxes with known answers, and a run on coco-mini."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from show_attend_tell.grounding import (
    WORD_TO_CATEGORY,
    attention_peak,
    caption_categories,
    point_in_boxes,
    pointing_game,
    summarize_pointing,
)
from tests.conftest import make_tiny, read_metadata


def one_hot_map(grid: tuple[int, int], row: int, col: int) -> np.ndarray:
    attention = np.full(grid, 0.01)
    attention[row, col] = 1.0
    return attention / attention.sum()


def test_peak_is_the_centre_of_the_most_attended_cell_in_image_pixels():
    # 2x2 grid over a 200x100 photo: the bottom-right cell is x in [100, 200], y in [50, 100].
    flat = np.array([0.1, 0.2, 0.3, 0.4])
    assert attention_peak(flat, image_size=(200, 100)) == (150.0, 75.0)
    assert attention_peak(torch.tensor(flat).reshape(2, 2), image_size=(200, 100)) == (150.0, 75.0)
    # Row-major order on a non-square grid: index 5 of a 2x4 grid is row 1, column 1.
    assert attention_peak(np.eye(8)[5], image_size=(400, 100), grid=(2, 4)) == (150.0, 75.0)


def test_peak_rejects_maps_that_do_not_fit_a_grid():
    with pytest.raises(ValueError, match="not a square grid"):
        attention_peak(np.ones(6), image_size=(10, 10))
    with pytest.raises(ValueError, match=r"grid \(2, 2\) has 4 cells but the attention map has 6"):
        attention_peak(np.ones(6), image_size=(10, 10), grid=(2, 2))


def test_point_in_boxes_includes_edges():
    boxes = [[10, 20, 30, 40]]  # x 10..40, y 20..60
    assert point_in_boxes((10, 20), boxes) and point_in_boxes((40, 60), boxes) and point_in_boxes((25, 30), boxes)
    assert not point_in_boxes((9.9, 30), boxes) and not point_in_boxes((25, 60.1), boxes)
    assert not point_in_boxes((25, 30), [])


@pytest.mark.parametrize(
    "caption, expected",
    [
        ("a man and two women with a puppy", [(1, "person"), (4, "person"), (7, "dog")]),
        ("kittens on a bike near motorbikes", [(0, "cat"), (3, "bicycle"), (5, "motorcycle")]),
        ("people watch a plane and a tv", [(0, "person"), (3, "airplane"), (6, "tv")]),
        ("a teddy bear next to a hot dog", [(2, "teddy bear"), (7, "hot dog")]),
        ("wine glasses on a dining table", [(1, "wine glass"), (5, "dining table")]),
        ("an orange cat eating oranges", [(2, "cat"), (4, "orange")]),
        ("a laptop and a cell phone on a desk", [(1, "laptop"), (5, "cell phone")]),
        ("a sunny day at the beach", []),
    ],
)
def test_category_words_synonyms_plurals_and_two_word_names(caption, expected):
    assert caption_categories(caption.split()) == expected


def test_word_table_maps_only_to_coco_categories():
    from show_attend_tell.grounding import COCO_CATEGORIES

    assert len(COCO_CATEGORIES) == 80
    assert set(WORD_TO_CATEGORY.values()) <= set(COCO_CATEGORIES)
    assert WORD_TO_CATEGORY["men"] == "person" and WORD_TO_CATEGORY["buses"] == "bus"


# A 400x200 photo, 4x4 grid (cells 100 wide, 50 high): a person top-left, a dog bottom-right, a car at the centre.
OBJECTS = {
    "bbox": [[0, 0, 100, 100], [300, 100, 100, 100], [150, 50, 100, 100]],
    "category": ["person", "dog", "car"],
}
WORDS = "a man walks a dog near two cars and a kite".split()


def hand_made_maps() -> np.ndarray:
    maps = np.stack([one_hot_map((4, 4), 1, 1) for _ in WORDS])
    maps[1] = one_hot_map((4, 4), 0, 0)  # "man" -> (50, 25): inside the person box
    maps[4] = one_hot_map((4, 4), 0, 0)  # "dog" -> (50, 25): not in the dog box
    maps[7] = one_hot_map((4, 4), 3, 3)  # "cars" -> (350, 175): not in the car box
    return maps.reshape(len(WORDS), 16)


def test_pointing_game_on_hand_made_maps_has_the_known_answer():
    results = pointing_game(WORDS, hand_made_maps(), image_size=(400, 200), objects=OBJECTS)
    # "kite" names a category without a box in this image: it is not scored.
    assert [(r.word, r.category, r.point, r.hit, r.center_hit) for r in results] == [
        ("man", "person", (50.0, 25.0), True, False),
        ("dog", "dog", (50.0, 25.0), False, False),
        ("cars", "car", (350.0, 175.0), False, True),
    ]
    summary = summarize_pointing(results)
    assert summary["overall"] == {"hit_rate": pytest.approx(1 / 3), "center_baseline": pytest.approx(1 / 3), "words": 3}
    assert summary["per_category"] == {
        "car": {"hit_rate": 0.0, "center_baseline": 1.0, "words": 1},
        "dog": {"hit_rate": 0.0, "center_baseline": 0.0, "words": 1},
        "person": {"hit_rate": 1.0, "center_baseline": 0.0, "words": 1},
    }


def test_pointing_game_accepts_torch_and_grid_shaped_maps():
    expected = pointing_game(WORDS, hand_made_maps(), (400, 200), OBJECTS)
    as_grid = torch.tensor(hand_made_maps()).reshape(len(WORDS), 4, 4)
    assert pointing_game(WORDS, as_grid, (400, 200), OBJECTS) == expected


def test_summary_of_no_words_has_no_rates():
    assert summarize_pointing([]) == {
        "overall": {"hit_rate": None, "center_baseline": None, "words": 0},
        "per_category": {},
    }


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="one row per word"):
        pointing_game(WORDS, hand_made_maps()[:3], (400, 200), OBJECTS)
    with pytest.raises(ValueError, match=r"objects\['bbox'\]\[0\] must be \[x, y, width, height\]"):
        pointing_game(WORDS, hand_made_maps(), (400, 200), {"bbox": [[0, 0, 10]], "category": ["person"]})
    with pytest.raises(ValueError, match="2 boxes but 1 categories"):
        pointing_game(WORDS, hand_made_maps(), (400, 200), {"bbox": [[0, 0, 1, 1]] * 2, "category": ["person"]})
    with pytest.raises(ValueError, match="must have 'bbox' and 'category'"):
        pointing_game(WORDS, hand_made_maps(), (400, 200), {"boxes": []})


def test_grounding_runs_on_coco_mini_with_a_tiny_model(coco_mini, coco_train_rows):
    """Smoke test of the whole path on real photos and boxes (a random model: the rates themselves mean nothing)."""
    from training.evaluate_captioner import generate_captions

    rows = [row for row in read_metadata(coco_mini / "test") if row["objects_annotated"]][:6]
    model, processor = make_tiny([caption for row in coco_train_rows for caption in row["captions"]])
    with torch.no_grad():  # make the random model say "man" at every step, so that every person photo is scored
        model.get_output_embeddings().bias[processor.tokenizer.convert_tokens_to_ids("man")] = 100.0
    generated = generate_captions(
        model, processor, [row["path"] for row in rows], batch_size=4, progress=False,
        max_new_tokens=3, output_attentions=True,
    )  # fmt: skip
    results = []
    for row, item in zip(rows, generated, strict=True):
        assert item.words == item.caption.split() == ["man"] * 3
        assert item.attention_maps.shape == (3, 4) and item.grid == (2, 2)
        results.extend(pointing_game(item.words, item.attention_maps, item.image_size, row["objects"], item.grid))
    summary = summarize_pointing(results)

    with_person = [row for row in rows if "person" in row["objects"]["category"]]
    assert with_person, "the first annotated coco-mini test photos should include people"
    assert summary["overall"]["words"] == 3 * len(with_person)
    assert set(summary["per_category"]) == {"person"}
    assert 0.0 <= summary["overall"]["hit_rate"] <= 1.0
    # The centre baseline, computed independently from the photos' sizes and person boxes.
    centre_hits = []
    for row in with_person:
        with Image.open(row["path"]) as image:
            width, height = image.size
        objects = zip(row["objects"]["bbox"], row["objects"]["category"], strict=True)
        boxes = [box for box, name in objects if name == "person"]
        centre_hits.append(any(x <= width / 2 <= x + w and y <= height / 2 <= y + h for x, y, w, h in boxes))
    assert summary["overall"]["center_baseline"] == pytest.approx(sum(centre_hits) / len(centre_hits))
