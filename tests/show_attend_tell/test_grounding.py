"""Pointing-game grounding score: hand-made attention maps and boxes with known answers, and a run on coco-mini."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from show_attend_tell.grounding import (
    COCO_SCORERS,
    SHAPES_SCORERS,
    WORD_TO_CATEGORY,
    PointingResult,
    attention_peak,
    attention_statistics,
    caption_categories,
    choosing_step_mentions,
    grid_cell_centres,
    phrase_mentions,
    point_in_boxes,
    pointing_game,
    random_cell_hit_rate,
    scorers_for,
    summarize_pointing,
)
from show_attend_tell.reporting import grounding_table
from tests.conftest import make_tiny, read_metadata


def one_hot_map(grid: tuple[int, int], row: int, col: int) -> np.ndarray:
    attention = np.full(grid, 0.01)
    attention[row, col] = 1.0
    return attention / attention.sum()


def test_peak_is_the_centre_of_the_most_attended_cell_in_image_pixels():
    # 2x2 grid over a 200x100 photo: the bottom-right cell is x in [100, 200], y in [50, 100].
    square = np.array([[0.1, 0.2], [0.3, 0.4]])
    assert attention_peak(square, image_size=(200, 100)) == (150.0, 75.0)
    assert attention_peak(torch.tensor(square), image_size=(200, 100)) == (150.0, 75.0)
    # A non-square grid: cell (1, 1) of a 2x4 grid over a 400x100 photo is x in [100, 200], y in [50, 100].
    assert attention_peak(np.eye(8)[5].reshape(2, 4), image_size=(400, 100)) == (150.0, 75.0)


def test_peak_rejects_maps_that_are_not_a_grid():
    with pytest.raises(ValueError, match=r"must be \(grid_height, grid_width\), got shape \(6,\)"):
        attention_peak(np.ones(6), image_size=(10, 10))


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
    return maps


def test_pointing_game_on_hand_made_maps_has_the_known_answer():
    results = pointing_game(WORDS, hand_made_maps(), image_size=(400, 200), objects=OBJECTS)
    # "kite" names a category without a box in this image: it is not scored.
    assert [(r.word, r.category, r.point, r.hit, r.center_hit) for r in results] == [
        ("man", "person", (50.0, 25.0), True, False),
        ("dog", "dog", (50.0, 25.0), False, False),
        ("cars", "car", (350.0, 175.0), False, True),
    ]
    summary = summarize_pointing(results)
    assert summary["overall"] == {
        "hit_rate": pytest.approx(1 / 3),
        "center_baseline": pytest.approx(1 / 3),
        "random_baseline": pytest.approx(1 / 6),
        # hit - centre per word: +1 (man), 0 (dog), -1 (cars): sample standard deviation 1, over sqrt(3) words
        "center_margin_se": pytest.approx(1 / 3**0.5),
        "words": 3,
    }
    one_word = {"center_margin_se": None, "words": 1}  # one word has no spread
    assert summary["per_category"] == {
        "car": {"hit_rate": 0.0, "center_baseline": 1.0, "random_baseline": 0.25, **one_word},
        "dog": {"hit_rate": 0.0, "center_baseline": 0.0, "random_baseline": 0.125, **one_word},
        "person": {"hit_rate": 1.0, "center_baseline": 0.0, "random_baseline": 0.125, **one_word},
    }


def test_center_margin_error_is_paired():
    """The model and the centre are scored on the same mentions: when the centre hits exactly where the model does,
    the margin is certain (error 0) however uncertain each rate is; a margin of -1/+1 swings has the full spread."""
    same = [PointingResult(0, "dog", "dog", (0.0, 0.0), hit, hit) for hit in (True, False, True, False)]
    assert summarize_pointing(same)["overall"]["center_margin_se"] == 0.0
    swings = [PointingResult(0, "dog", "dog", (0.0, 0.0), hit, not hit) for hit in (True, False, True, False)]
    # differences +1, -1, +1, -1: sample standard deviation sqrt(4/3), over sqrt(4) words
    assert summarize_pointing(swings)["overall"]["center_margin_se"] == pytest.approx((4 / 3) ** 0.5 / 2)


def test_choosing_step_and_phrase_score_the_step_before_an_object_word():
    # "a man walks a dog": "a" (index 0) chose the man, "a" (index 3) chose the dog.
    assert choosing_step_mentions(WORDS) == [(0, "person"), (3, "dog"), (6, "car"), (9, "kite")]
    assert phrase_mentions(WORDS)[:2] == [((0, 1), "person"), ((3, 4), "dog")]
    assert choosing_step_mentions("dogs and a cat".split()) == [(2, "cat")]  # a first word has no step before it
    maps = hand_made_maps()
    maps[3] = one_hot_map((4, 4), 3, 3)  # the "a" before "dog" looks at (350, 175): inside the dog box
    chosen = pointing_game(WORDS, maps, (400, 200), OBJECTS, mentions=choosing_step_mentions)
    assert [(r.word, r.category, r.hit) for r in chosen] == [("a", "person", False), ("a", "dog", True),
                                                              ("two", "car", True)]  # fmt: skip
    phrase = pointing_game(WORDS, maps, (400, 200), OBJECTS, mentions=phrase_mentions)
    assert [(r.word, r.category) for r in phrase] == [("man", "person"), ("dog", "dog"), ("cars", "car")]


def test_pointing_game_accepts_torch_maps_and_refuses_flat_ones():
    expected = pointing_game(WORDS, hand_made_maps(), (400, 200), OBJECTS)
    assert pointing_game(WORDS, torch.tensor(hand_made_maps()), (400, 200), OBJECTS) == expected
    with pytest.raises(ValueError, match="one row per word"):  # flat maps: the grid is the model's, never guessed
        pointing_game(WORDS, hand_made_maps().reshape(len(WORDS), 16), (400, 200), OBJECTS)


def test_summary_of_no_words_has_no_rates():
    assert summarize_pointing([]) == {
        "overall": {
            "hit_rate": None,
            "center_baseline": None,
            "random_baseline": None,
            "center_margin_se": None,
            "words": 0,
        },
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
    from show_attend_tell import caption_images

    rows = [row for row in read_metadata(coco_mini / "test") if row["objects_annotated"]][:6]
    model, processor = make_tiny([caption for row in coco_train_rows for caption in row["captions"]])
    with torch.no_grad():  # make the random model say "man" at every step, so that every person photo is scored
        model.get_output_embeddings().bias[processor.tokenizer.convert_tokens_to_ids("man")] = 100.0
    generated = caption_images(model, processor, [row["path"] for row in rows], batch_size=4, max_new_tokens=3)
    results = []
    for row, item in zip(rows, generated, strict=True):
        assert item.words == item.text.split() == ["man"] * 3
        assert item.attention.shape == (3, 2, 2) and item.grid_size == (2, 2)
        results.extend(pointing_game(item.words, item.attention, item.image.size, row["objects"]))
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


# --------------------------------------------------------------------------------------------------------------------
# The grounding benchmark's pieces: random-cell baseline, focus statistics, generic mention -> label pointing
# --------------------------------------------------------------------------------------------------------------------


def test_random_cell_baseline_is_the_share_of_cell_centres_in_the_boxes():
    # 4x4 grid over 400x200: cell centres at x 50, 150, 250, 350 and y 25, 75, 125, 175.
    assert grid_cell_centres((1, 2), (400, 200)).tolist() == [[100.0, 100.0], [300.0, 100.0]]
    assert random_cell_hit_rate([[0, 0, 100, 100]], (4, 4), (400, 200)) == 2 / 16  # (50, 25), (50, 75)
    assert random_cell_hit_rate([[0, 0, 400, 200]], (4, 4), (400, 200)) == 1.0
    assert random_cell_hit_rate([[0, 0, 100, 100], [0, 0, 100, 100]], (4, 4), (400, 200)) == 2 / 16  # no double count
    assert random_cell_hit_rate([[160, 80, 30, 30]], (4, 4), (400, 200)) == 0.0  # between centres
    assert random_cell_hit_rate([[0, 0, 400, 60]], (2, 8), (400, 200)) == 8 / 16  # non-square grid: the top row


def test_pointing_results_carry_the_random_cell_baseline():
    results = pointing_game(WORDS, hand_made_maps(), image_size=(400, 200), objects=OBJECTS)
    # person box: 2 of 16 centres; dog box [300, 100, 100, 100]: (350, 125), (350, 175); car [150..250, 50..150]:
    # (150, 75), (250, 75), (150, 125), (250, 125).
    assert [r.random_hit for r in results] == [2 / 16, 2 / 16, 4 / 16]
    assert summarize_pointing(results)["overall"]["random_baseline"] == pytest.approx(8 / 48)


def test_attention_statistics_of_flat_and_one_cell_maps():
    flat = np.full((3, 2, 4), 1 / 8)
    one_cell = np.stack([np.eye(8)[i].reshape(2, 4) for i in range(2)])
    stats = attention_statistics([flat])
    assert stats["entropy"] == pytest.approx(np.log(8)) and stats["entropy_ratio"] == pytest.approx(1.0)
    assert stats["peak"] == pytest.approx(1 / 8) and stats["uniform_peak"] == 1 / 8 and stats["words"] == 3
    stats = attention_statistics([one_cell, torch.tensor(flat)])  # words of several captions, numpy or torch
    assert stats["words"] == 5
    assert stats["entropy_ratio"] == pytest.approx(3 / 5)  # 2 words at 0 nats, 3 at log 8
    assert stats["peak"] == pytest.approx((2 * 1.0 + 3 / 8) / 5)
    half = np.array([[[0.5, 0.5, 0.0, 0.0]]])  # two of four cells: log 2 / log 4
    assert attention_statistics([half])["entropy_ratio"] == pytest.approx(0.5)
    assert attention_statistics([])["entropy_ratio"] is None
    with pytest.raises(ValueError, match="share one grid"):
        attention_statistics([flat, np.full((1, 3, 3), 1 / 9)])


# A shapes scene, 128x128 on a 4x4 grid: a red circle in cell (0, 0), a blue square in cell (3, 2).
SCENE = {
    "bbox": [[4, 4, 24, 24], [68, 100, 24, 24]],
    "category": ["circle", "square"],
    "color": ["red", "blue"],
}
SCENE_WORDS = "a red circle above a blue square".split()


def scene_maps() -> np.ndarray:
    maps = np.stack([one_hot_map((4, 4), 1, 1) for _ in SCENE_WORDS])
    maps[1] = one_hot_map((4, 4), 0, 0)  # "red" on the red circle
    maps[2] = one_hot_map((4, 4), 2, 2)  # "circle" elsewhere: the shape word misses
    maps[5] = 0.5 * one_hot_map((4, 4), 3, 2) + 0.5 * one_hot_map((4, 4), 3, 1)  # "blue": peak on the square
    maps[6] = one_hot_map((4, 4), 3, 2)  # "square" on the blue square
    return maps


def test_generic_pointing_scores_shape_words_and_colour_shape_phrases():
    shape_mentions, labels = SHAPES_SCORERS["shape word"]
    results = pointing_game(SCENE_WORDS, scene_maps(), (128, 128), SCENE, mentions=shape_mentions, labels=labels)
    assert [(r.word, r.category, r.hit, r.random_hit) for r in results] == [
        ("circle", "red circle", False, 1 / 16),
        ("square", "blue square", True, 1 / 16),
    ]
    phrase_mentions, labels = SHAPES_SCORERS["colour+shape phrase"]
    results = pointing_game(SCENE_WORDS, scene_maps(), (128, 128), SCENE, mentions=phrase_mentions, labels=labels)
    # "red" + "circle" summed: two equal peaks, (0, 0) comes first; "blue" + "square": (3, 2).
    assert [(r.word, r.category, r.hit) for r in results] == [
        ("circle", "red circle", True),
        ("square", "blue square", True),
    ]
    # A wrong colour names no object of the scene: not scored.
    wrong = "a green circle above a blue square".split()
    assert [
        r.category
        for r in pointing_game(wrong, scene_maps(), (128, 128), SCENE, mentions=shape_mentions, labels=labels)
    ] == ["blue square"]


def test_generic_pointing_takes_any_word_to_category_function():
    def animals(words):
        return [(index, "dog") for index, word in enumerate(words) if word in {"hound", "mutt"}]

    results = pointing_game(
        "a hound and a man".split(), np.stack([one_hot_map((4, 4), 3, 3)] * 5), (400, 200), OBJECTS, mentions=animals
    )
    assert [(r.word, r.category, r.hit) for r in results] == [("hound", "dog", True)]


def test_scorers_follow_the_boxes():
    assert scorers_for([{"objects": SCENE}]) is SHAPES_SCORERS
    assert scorers_for([{"objects": {"bbox": [], "category": []}}, {"objects": OBJECTS}]) is COCO_SCORERS
    assert scorers_for([{"captions": ["no boxes"]}]) == {}


def test_grounding_table_has_one_row_per_scorer():
    report = {
        "num_images": 2,
        "exact": 0.5,
        "metrics": {"CIDEr": 1.234, "BLEU-4": 0.5},
        "pointing": {
            "shape word": {
                "overall": {
                    "hit_rate": 0.25,
                    "center_baseline": 0.0,
                    "random_baseline": 0.0625,
                    "center_margin_se": 0.25,
                    "words": 4,
                }
            },
            "colour+shape phrase": {
                "overall": {
                    "hit_rate": 1.0,
                    "center_baseline": 0.0,
                    "random_baseline": 0.0625,
                    "center_margin_se": None,
                    "words": 1,
                }
            },
        },
        "attention": {"entropy_ratio": 0.5, "peak": 0.4, "uniform_peak": 1 / 16},
    }
    lines = grounding_table({"run": report}).splitlines()
    assert lines[0].startswith(
        "| model | images | CIDEr | BLEU-4 | exact | scorer | words | hit % | centre % | random % "
        "| hit - centre (95% CI) | entropy"
    )
    assert lines[2] == (
        "| run | 2 | 1.234 | 0.500 | 50.0 | shape word | 4 | 25.0 | 0.0 | 6.2 | +25.0 ± 49.0 | 50.0 | 0.400 (0.062) |"
    )
    assert lines[3].split(" | ")[5:11] == ["colour+shape phrase", "1", "100.0", "0.0", "6.2", "+100.0"]
    assert len(lines) == 4
