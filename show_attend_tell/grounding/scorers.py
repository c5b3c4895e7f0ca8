"""Named scorers of a data set's boxes: which mentions of a caption are scored, against which box labels.

A scorer is `(mentions, labels)` for `pointing.pointing_game`. On COCO boxes the mentions are COCO object words, at
the word's own map, at the map of the step that chose the object, or both summed; on the built-in shapes scenes
(boxes with a `color`) they are "<colour> <shape>" phrases.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .coco_words import caption_categories
from .pointing import LabelFunction, Mention, MentionFunction, attribute_categories, box_categories


def pair_head_mentions(words: Sequence[str]) -> list[Mention]:
    """Every two-word phrase `"w[i-1] w[i]"`, scored at its second word's map (the shape word of "red circle")."""
    return [(index, f"{words[index - 1]} {words[index]}") for index in range(1, len(words))]


def pair_mentions(words: Sequence[str]) -> list[Mention]:
    """Every two-word phrase, scored on the sum of both words' maps (colour + shape)."""
    return [((index - 1, index), f"{words[index - 1]} {words[index]}") for index in range(1, len(words))]


def choosing_step_mentions(words: Sequence[str]) -> list[Mention]:
    """COCO category words scored at the map of the step before them (the step that chose the object: the map of "a"
    in "a dog"); a category word that starts the caption has no such step and is not scored."""
    return [(index - 1, category) for index, category in caption_categories(words) if index > 0]


def phrase_mentions(words: Sequence[str]) -> list[Mention]:
    """COCO category words scored on the sum of their own map and the previous step's (the phrase "a dog")."""
    return [((index - 1, index) if index > 0 else index, category) for index, category in caption_categories(words)]


# Named scorers of a data set's boxes: `(mentions, labels)` for `pointing_game`. "choosing step" (the map of the step
# that chose the object) is the one every report leads with (docs/grounding.md, "Which map for a noun"); the word's
# own map and the phrase's are reported beside it.
COCO_SCORERS: dict[str, tuple[MentionFunction, LabelFunction]] = {
    "choosing step": (choosing_step_mentions, box_categories),
    "object word": (caption_categories, box_categories),
    "phrase (step before + word)": (phrase_mentions, box_categories),
}
SHAPES_SCORERS: dict[str, tuple[MentionFunction, LabelFunction]] = {
    "shape word": (pair_head_mentions, attribute_categories),
    "colour+shape phrase": (pair_mentions, attribute_categories),
}


def scorers_for(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[MentionFunction, LabelFunction]]:
    """The built-in shapes scorers when the boxes carry a colour (`objects["color"]`), else the COCO word scorer."""
    for row in rows:
        objects = row.get("objects")
        if objects and objects.get("bbox"):
            return SHAPES_SCORERS if "color" in objects else COCO_SCORERS
    return {}


__all__ = [
    "COCO_SCORERS",
    "SHAPES_SCORERS",
    "choosing_step_mentions",
    "pair_head_mentions",
    "pair_mentions",
    "phrase_mentions",
    "scorers_for",
]
