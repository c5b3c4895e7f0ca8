"""Attention grounding score: the pointing game on generated captions.

For every generated word that names a COCO object category (directly, through a small synonym table, or as the head
of a two-word name such as "hot dog"), the peak cell of that word's attention map is mapped to the centre of that cell
in image pixels. The word is a hit when the point falls inside (or on the edge of) any box of that category in the
image. A baseline that always points at the image centre is scored on the same words.

Only words whose category has at least one box in the image are scored: a word naming an absent object cannot be
localised (it is a hallucination, not a grounding error). Boxes use the COCO / coco-mini `objects` format:
`{"bbox": [[x, y, width, height], ...], "category": [name, ...]}` in pixels of the original image. The attention grid
(`config.grid_size`, any height and width) covers the whole photo because the image processor resizes it without
cropping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

COCO_CATEGORIES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant",
    "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket", "bottle",
    "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli",
    "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "dining table", "toilet",
    "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)  # fmt: skip

# Singular words (plurals are added below) -> category. Single-word category names map to themselves, except
# "orange" (mostly a colour in captions), which only counts in the plural.
_SYNONYMS = {
    "person": ["man", "woman", "boy", "girl", "person", "player", "child", "kid", "guy", "lady", "baby", "adult",
               "toddler", "teenager", "gentleman", "skier", "surfer", "skateboarder", "snowboarder", "rider",
               "batter", "catcher", "biker", "cyclist", "tourist", "chef", "worker", "officer", "athlete"],
    "bicycle": ["bicycle", "bike"],
    "motorcycle": ["motorcycle", "motorbike", "scooter", "moped"],
    "airplane": ["airplane", "plane", "aeroplane", "jet", "airliner", "aircraft"],
    "bus": ["bus"],
    "car": ["car", "taxi", "suv"],
    "dog": ["dog", "puppy", "pup"],
    "cat": ["cat", "kitten", "kitty"],
    "horse": ["horse", "pony", "foal"],
    "sheep": ["sheep", "lamb"],
    "cow": ["cow", "calf", "bull", "cattle"],
    "bird": ["bird", "seagull", "gull", "pigeon", "duck", "goose", "parrot"],
    "boat": ["boat", "ship", "sailboat", "canoe", "kayak"],
    "couch": ["couch", "sofa"],
    "tv": ["tv", "television", "monitor"],
    "cell phone": ["phone", "cellphone", "smartphone"],
    "dining table": ["table"],
    "potted plant": ["plant", "houseplant"],
    "sports ball": ["ball"],
    "baseball bat": ["bat"],
    "baseball glove": ["glove", "mitt"],
    "tennis racket": ["racket", "racquet"],
    "fire hydrant": ["hydrant"],
    "parking meter": ["meter"],
    "handbag": ["handbag", "purse", "bag"],
    "suitcase": ["suitcase", "luggage"],
    "donut": ["donut", "doughnut"],
    "refrigerator": ["refrigerator", "fridge"],
    "hot dog": ["hotdog"],
    "teddy bear": ["teddy"],
    "hair drier": ["hairdryer"],
    "laptop": ["laptop"],
    "skis": ["skis"],
    "orange": ["oranges"],
}  # fmt: skip
_IRREGULAR_PLURALS = {
    "man": "men", "woman": "women", "child": "children", "person": "people", "gentleman": "gentlemen",
    "mouse": "mice", "knife": "knives", "calf": "calves", "goose": "geese", "sheep": "sheep", "cattle": "cattle",
    "skis": "skis", "scissors": "scissors", "broccoli": "broccoli", "luggage": "luggage", "oranges": "oranges",
    "bus": "buses", "taxi": "taxis", "tv": "tvs", "foal": "foals",
}  # fmt: skip
# Two-word category names: the attention of the second (head) word is scored.
_PHRASES = {tuple(name.split()): name for name in COCO_CATEGORIES if " " in name} | {
    ("soccer", "ball"): "sports ball",
    ("tennis", "ball"): "sports ball",
    ("cell", "phone"): "cell phone",
    ("mobile", "phone"): "cell phone",
    ("hair", "dryer"): "hair drier",
    ("hair", "drier"): "hair drier",
}


def _plural(word: str) -> str:
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if word.endswith(("s", "x", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in "aeiou":
        return word[:-1] + "ies"
    return word + "s"


def _build_word_table() -> dict[str, str]:
    table = {}
    for category in COCO_CATEGORIES:
        if " " not in category and category != "orange":
            table[category] = category
    for category, words in _SYNONYMS.items():
        for word in words:
            if " " not in word:
                table[word] = category
    for word, category in list(table.items()):
        table.setdefault(_plural(word), category)
    return table


WORD_TO_CATEGORY: dict[str, str] = _build_word_table()


def caption_categories(words: Sequence[str]) -> list[tuple[int, str]]:
    """`(word index, COCO category)` for the words of a caption that name a category (lower-case words expected).

    Two-word names ("hot dog", "teddy bears", "cell phone") are matched at their second word, which then does not
    also count as its one-word category.
    """
    words = [word.lower() for word in words]
    phrases = {}  # index of the head word -> category
    for index in range(1, len(words)):
        word = words[index]
        for form in (word, word[:-1], word[:-2]):  # "bears" -> "bear", "glasses" -> "glass"
            if (words[index - 1], form) in _PHRASES:
                phrases[index] = _PHRASES[(words[index - 1], form)]
                break
    found = []
    for index, word in enumerate(words):
        if index + 1 in phrases:  # "teddy" in "teddy bear": the phrase is scored at its head word
            continue
        category = phrases.get(index) or WORD_TO_CATEGORY.get(word)
        if category is not None:
            found.append((index, category))
    return found


def _as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def attention_peak(attention: Any, image_size: tuple[int, int]) -> tuple[float, float]:
    """Pixel point `(x, y)` of the centre of the most attended grid cell.

    Args:
        attention: one word's attention on the region grid, `(grid_height, grid_width)` (as in `Caption.attention`).
        image_size: `(width, height)` of the original image in pixels.
    """
    attention = _as_numpy(attention)
    if attention.ndim != 2:
        raise ValueError(f"attention map must be (grid_height, grid_width), got shape {attention.shape}")
    rows, cols = attention.shape
    row, col = divmod(int(np.argmax(attention)), cols)
    width, height = image_size
    return (col + 0.5) * width / cols, (row + 0.5) * height / rows


def point_in_boxes(point: tuple[float, float], boxes: Iterable[Sequence[float]]) -> bool:
    """Whether `(x, y)` lies inside or on the edge of any `[x, y, width, height]` box."""
    x, y = point
    return any(bx <= x <= bx + bw and by <= y <= by + bh for bx, by, bw, bh in boxes)


def _boxes_by_category(objects: Mapping[str, Sequence]) -> dict[str, list[Sequence[float]]]:
    if "bbox" not in objects or "category" not in objects:
        raise ValueError(f"objects must have 'bbox' and 'category' lists, got keys {sorted(objects)}")
    bboxes, categories = objects["bbox"], objects["category"]
    if len(bboxes) != len(categories):
        raise ValueError(f"objects has {len(bboxes)} boxes but {len(categories)} categories")
    boxes: dict[str, list[Sequence[float]]] = {}
    for index, (box, category) in enumerate(zip(bboxes, categories, strict=True)):
        if len(box) != 4 or box[2] < 0 or box[3] < 0:
            raise ValueError(f"objects['bbox'][{index}] must be [x, y, width, height] with width, height >= 0: {box}")
        boxes.setdefault(category, []).append(box)
    return boxes


@dataclass
class PointingResult:
    """One scored word: its position in the caption, its category, and whether the model / the centre baseline hit."""

    word_index: int
    word: str
    category: str
    point: tuple[float, float]
    hit: bool
    center_hit: bool


def pointing_game(
    words: Sequence[str],
    attention_maps: Any,
    image_size: tuple[int, int],
    objects: Mapping[str, Sequence],
) -> list[PointingResult]:
    """Score the category words of one caption.

    Args:
        words: the generated words, aligned with `attention_maps`.
        attention_maps: `(num_words, grid_height, grid_width)` attention (`Caption.attention`), map `i` for `words[i]`.
        image_size: `(width, height)` of the image the boxes refer to.
        objects: `{"bbox": [[x, y, w, h], ...], "category": [...]}` in pixels of that image.
    """
    maps = _as_numpy(attention_maps)
    if maps.ndim != 3 or maps.shape[0] != len(words):
        raise ValueError(
            f"attention_maps must have one row per word: got shape {maps.shape} for {len(words)} words {list(words)}"
        )
    boxes = _boxes_by_category(objects)
    width, height = image_size
    center = (width / 2, height / 2)
    results = []
    for index, category in caption_categories(words):
        if category not in boxes:
            continue
        point = attention_peak(maps[index], image_size)
        results.append(
            PointingResult(
                word_index=index,
                word=words[index],
                category=category,
                point=point,
                hit=point_in_boxes(point, boxes[category]),
                center_hit=point_in_boxes(center, boxes[category]),
            )
        )
    return results


def _rates(results: Sequence[PointingResult]) -> dict[str, float | int | None]:
    count = len(results)
    return {
        "hit_rate": sum(result.hit for result in results) / count if count else None,
        "center_baseline": sum(result.center_hit for result in results) / count if count else None,
        "words": count,
    }


def summarize_pointing(results: Iterable[PointingResult]) -> dict[str, dict]:
    """`{"overall": {"hit_rate", "center_baseline", "words"}, "per_category": {category: {...}}}`.

    Rates are fractions of scored words (None when no word was scored); categories are sorted by name.
    """
    results = list(results)
    per_category: dict[str, list[PointingResult]] = {}
    for result in results:
        per_category.setdefault(result.category, []).append(result)
    return {
        "overall": _rates(results),
        "per_category": {category: _rates(per_category[category]) for category in sorted(per_category)},
    }


__all__ = [
    "COCO_CATEGORIES",
    "WORD_TO_CATEGORY",
    "PointingResult",
    "attention_peak",
    "caption_categories",
    "point_in_boxes",
    "pointing_game",
    "summarize_pointing",
]
