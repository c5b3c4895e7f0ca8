"""Attention grounding: does a word's attention look at the object the word names?

- `coco_words`: which caption words name which COCO category (synonyms, plurals, two-word names);
- `pointing`: the pointing game on one caption's attention maps and an image's boxes, and its summary;
- `scorers`: the named (mentions, box labels) pairs scored on COCO photos and on the built-in shapes scenes;
- `focus`: attention entropy and peak weight against a uniform map's.

Scoring a whole data set, with caption metrics beside, is `show_attend_tell.evaluation.evaluate_captioner`.
"""

from .coco_words import COCO_CATEGORIES, WORD_TO_CATEGORY, caption_categories
from .focus import attention_statistics
from .pointing import (
    PointingResult,
    attention_peak,
    attribute_categories,
    box_categories,
    grid_cell_centres,
    point_in_boxes,
    pointing_game,
    random_cell_hit_rate,
    summarize_pointing,
)
from .scorers import (
    COCO_SCORERS,
    SHAPES_SCORERS,
    choosing_step_mentions,
    pair_head_mentions,
    pair_mentions,
    phrase_mentions,
    scorers_for,
)

__all__ = [
    "COCO_CATEGORIES",
    "COCO_SCORERS",
    "SHAPES_SCORERS",
    "WORD_TO_CATEGORY",
    "PointingResult",
    "attention_peak",
    "attention_statistics",
    "attribute_categories",
    "box_categories",
    "caption_categories",
    "choosing_step_mentions",
    "grid_cell_centres",
    "pair_head_mentions",
    "pair_mentions",
    "phrase_mentions",
    "point_in_boxes",
    "pointing_game",
    "random_cell_hit_rate",
    "scorers_for",
    "summarize_pointing",
]
