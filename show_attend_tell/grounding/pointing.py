"""The pointing game: is the peak of a word's attention map inside a box of the object the word names?

For every mention (by default a generated word that names a COCO object category, `coco_words.caption_categories`),
the peak cell of its attention map is mapped to the centre of that cell in image pixels. The mention is a hit when the
point falls inside (or on the edge of) any box with its label. Baselines are scored on the same mentions: always
pointing at the image centre, and the expected hit of a uniformly random grid cell.

Only mentions whose label has at least one box in the image are scored: a word naming an absent object cannot be
localised (it is a hallucination, not a grounding error). Boxes use the COCO / coco-mini `objects` format:
`{"bbox": [[x, y, width, height], ...], "category": [name, ...]}` in pixels of the original image. The attention grid
(`config.grid_size`, any height and width) covers the whole photo because the image processor resizes it without
cropping.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .coco_words import caption_categories


def as_numpy(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        return array.detach().float().cpu().numpy()
    return np.asarray(array, dtype=np.float64)


def attention_peak(attention: Any, image_size: tuple[int, int]) -> tuple[float, float]:
    """Pixel point `(x, y)` of the centre of the most attended grid cell.

    Args:
        attention: one word's attention on the region grid, `(grid_height, grid_width)` (as in `Caption.attention`).
        image_size: `(width, height)` of the original image in pixels.
    """
    attention = as_numpy(attention)
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


def _boxes_by_category(
    objects: Mapping[str, Sequence], labels: Callable[[Mapping[str, Sequence]], Sequence[str]]
) -> dict[str, list[Sequence[float]]]:
    if "bbox" not in objects or "category" not in objects:
        raise ValueError(f"objects must have 'bbox' and 'category' lists, got keys {sorted(objects)}")
    bboxes, categories = objects["bbox"], labels(objects)
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
    """One scored mention: its word (the last word of a phrase), its label, where the model pointed, and whether the
    model / the centre baseline hit; `random_hit` is the expected hit of a uniformly random grid cell."""

    word_index: int
    word: str
    category: str
    point: tuple[float, float]
    hit: bool
    center_hit: bool
    random_hit: float = 0.0


# A mention names a box label: `(word index, label)` scores that word's map, `((i, j, ...), label)` the sum of the
# words' maps (a phrase). A mention function finds the mentions of a caption's words.
Mention = tuple[int | tuple[int, ...], str]
MentionFunction = Callable[[Sequence[str]], Iterable[Mention]]
LabelFunction = Callable[[Mapping[str, Sequence]], Sequence[str]]


def box_categories(objects: Mapping[str, Sequence]) -> Sequence[str]:
    """The default box labels: `objects["category"]` (COCO category names)."""
    return objects["category"]


def attribute_categories(objects: Mapping[str, Sequence], attribute: str = "color") -> list[str]:
    """Box labels `"<attribute> <category>"` (the built-in shapes: `"red circle"`), for phrase mentions."""
    return [f"{value} {category}" for value, category in zip(objects[attribute], objects["category"], strict=True)]


def grid_cell_centres(grid_size: tuple[int, int], image_size: tuple[int, int]) -> np.ndarray:
    """`(rows * columns, 2)` pixel centres `(x, y)` of the region grid's cells, row by row."""
    (rows, columns), (width, height) = grid_size, image_size
    ys, xs = np.meshgrid((np.arange(rows) + 0.5) * height / rows, (np.arange(columns) + 0.5) * width / columns)
    return np.stack([xs.T.ravel(), ys.T.ravel()], axis=1)


def random_cell_hit_rate(
    boxes: Iterable[Sequence[float]], grid_size: tuple[int, int], image_size: tuple[int, int]
) -> float:
    """Expected hit rate of pointing at a uniformly random grid cell: the share of cell centres inside a box."""
    boxes = list(boxes)
    centres = grid_cell_centres(grid_size, image_size)
    return sum(point_in_boxes((float(x), float(y)), boxes) for x, y in centres) / len(centres)


def pointing_game(
    words: Sequence[str],
    attention_maps: Any,
    image_size: tuple[int, int],
    objects: Mapping[str, Sequence],
    *,
    mentions: MentionFunction = caption_categories,
    labels: LabelFunction = box_categories,
) -> list[PointingResult]:
    """Score the mentions of one caption: for each, is the peak of its attention inside a box with its label?

    Args:
        words: the generated words, aligned with `attention_maps`.
        attention_maps: `(num_words, grid_height, grid_width)` attention (`Caption.attention`), map `i` for `words[i]`.
        image_size: `(width, height)` of the image the boxes refer to.
        objects: `{"bbox": [[x, y, w, h], ...], "category": [...]}` in pixels of that image.
        mentions: the caption's mentions (default: COCO category words, `caption_categories`).
        labels: each box's label (default: `objects["category"]`). A mention whose label has no box is not scored.
    """
    maps = as_numpy(attention_maps)
    if maps.ndim != 3 or maps.shape[0] != len(words):
        raise ValueError(
            f"attention_maps must have one row per word: got shape {maps.shape} for {len(words)} words {list(words)}"
        )
    boxes = _boxes_by_category(objects, labels)
    width, height = image_size
    center = (width / 2, height / 2)
    results = []
    for indices, category in mentions(words):
        if category not in boxes:
            continue
        indices = (indices,) if isinstance(indices, int) else tuple(indices)
        point = attention_peak(maps[list(indices)].sum(axis=0), image_size)
        results.append(
            PointingResult(
                word_index=indices[-1],
                word=words[indices[-1]],
                category=category,
                point=point,
                hit=point_in_boxes(point, boxes[category]),
                center_hit=point_in_boxes(center, boxes[category]),
                random_hit=random_cell_hit_rate(boxes[category], maps.shape[1:], image_size),
            )
        )
    return results


def _rates(results: Sequence[PointingResult]) -> dict[str, float | int | None]:
    count = len(results)
    # Paired: the model and the centre are scored on the same mentions, so the margin's error is that of the
    # per-mention differences (each -1, 0 or 1), not of two independent rates.
    margins = [float(result.hit) - float(result.center_hit) for result in results]
    return {
        "hit_rate": sum(result.hit for result in results) / count if count else None,
        "center_baseline": sum(result.center_hit for result in results) / count if count else None,
        "random_baseline": sum(result.random_hit for result in results) / count if count else None,
        "center_margin_se": statistics.stdev(margins) / math.sqrt(count) if count > 1 else None,
        "words": count,
    }


def summarize_pointing(results: Iterable[PointingResult]) -> dict[str, dict]:
    """`{"overall": {"hit_rate", "center_baseline", "random_baseline", "center_margin_se", "words"},
    "per_category": {category: {...}}}`.

    Rates are fractions of scored words (None when no word was scored); categories are sorted by name.
    `center_margin_se` is the standard error of `hit_rate - center_baseline` over these words (paired: both are scored
    on the same mentions; None below two words): the margin the grounding target asks for is only as sure as this.
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
    "LabelFunction",
    "Mention",
    "MentionFunction",
    "PointingResult",
    "as_numpy",
    "attention_peak",
    "attribute_categories",
    "box_categories",
    "grid_cell_centres",
    "point_in_boxes",
    "pointing_game",
    "random_cell_hit_rate",
    "summarize_pointing",
]
