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

from collections.abc import Callable, Iterable, Mapping, Sequence
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


def pair_head_mentions(words: Sequence[str]) -> list[Mention]:
    """Every two-word phrase `"w[i-1] w[i]"`, scored at its second word's map (the shape word of "red circle")."""
    return [(index, f"{words[index - 1]} {words[index]}") for index in range(1, len(words))]


def pair_mentions(words: Sequence[str]) -> list[Mention]:
    """Every two-word phrase, scored on the sum of both words' maps (colour + shape)."""
    return [((index - 1, index), f"{words[index - 1]} {words[index]}") for index in range(1, len(words))]


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
    maps = _as_numpy(attention_maps)
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
    return {
        "hit_rate": sum(result.hit for result in results) / count if count else None,
        "center_baseline": sum(result.center_hit for result in results) / count if count else None,
        "random_baseline": sum(result.random_hit for result in results) / count if count else None,
        "words": count,
    }


def summarize_pointing(results: Iterable[PointingResult]) -> dict[str, dict]:
    """`{"overall": {"hit_rate", "center_baseline", "random_baseline", "words"}, "per_category": {category: {...}}}`.

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


def attention_statistics(attention_maps: Iterable[Any]) -> dict[str, float | int]:
    """How focused per-word attention is, over all words of all captions.

    Args:
        attention_maps: per caption, `(num_words, grid_height, grid_width)` maps (`Caption.attention`), each word's
            map summing to 1.

    Returns:
        `entropy` (mean nats), `uniform_entropy` (log of the number of regions), `entropy_ratio` (their ratio: 1 for
        flat maps, 0 for one-cell maps), `peak` (mean largest weight), `uniform_peak` (1 / regions), `words`.
    """
    entropies, peaks, regions = [], [], None
    for maps in attention_maps:
        maps = _as_numpy(maps)
        if maps.ndim != 3:
            raise ValueError(f"attention maps must be (num_words, grid_height, grid_width), got shape {maps.shape}")
        if maps.shape[0] == 0:  # an empty caption: no word, no map
            continue
        flat = maps.reshape(len(maps), -1)
        if regions is not None and flat.shape[1] != regions:
            raise ValueError(f"all maps must share one grid: {flat.shape[1]} regions after {regions}")
        regions = flat.shape[1]
        safe = np.clip(flat, 1e-12, None)
        entropies.extend((-(flat * np.log(safe)).sum(axis=1)).tolist())
        peaks.extend(flat.max(axis=1).tolist())
    if not entropies:
        return {"entropy": None, "uniform_entropy": None, "entropy_ratio": None, "peak": None, "uniform_peak": None,
                "words": 0}  # fmt: skip
    entropy, uniform = float(np.mean(entropies)), float(np.log(regions))
    return {
        "entropy": entropy,
        "uniform_entropy": uniform,
        "entropy_ratio": entropy / uniform if uniform > 0 else 0.0,
        "peak": float(np.mean(peaks)),
        "uniform_peak": 1.0 / regions,
        "words": len(entropies),
    }


def choosing_step_mentions(words: Sequence[str]) -> list[Mention]:
    """COCO category words scored at the map of the step before them (the step that chose the object: the map of "a"
    in "a dog"); a category word that starts the caption has no such step and is not scored."""
    return [(index - 1, category) for index, category in caption_categories(words) if index > 0]


def phrase_mentions(words: Sequence[str]) -> list[Mention]:
    """COCO category words scored on the sum of their own map and the previous step's (the phrase "a dog")."""
    return [((index - 1, index) if index > 0 else index, category) for index, category in caption_categories(words)]


# Named scorers of a data set's boxes: `(mentions, labels)` for `pointing_game`. "object word" (the word's own map)
# is the one every report leads with; the other two say whether the model looked before it named the object.
COCO_SCORERS: dict[str, tuple[MentionFunction, LabelFunction]] = {
    "object word": (caption_categories, box_categories),
    "choosing step": (choosing_step_mentions, box_categories),
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


def grounding_scores(rows: Sequence[Mapping[str, Any]], generated: Sequence[Any]) -> dict[str, Any]:
    """Pointing game (per scorer of `scorers_for(rows)`) and attention statistics of captions of `rows`.

    Args:
        rows: data set rows (`objects` with `bbox`, `category` and, for shapes, `color`; rows without boxes are not
            pointed at but count in the attention statistics).
        generated: one `Caption` per row (`caption_images`).
    """
    pointing = {}
    for name, (mentions, labels) in scorers_for(rows).items():
        results = []
        for row, item in zip(rows, generated, strict=True):
            objects = row.get("objects")
            if objects and objects.get("bbox"):
                results.extend(
                    pointing_game(
                        item.words, item.attention, item.image.size, objects, mentions=mentions, labels=labels
                    )
                )
        pointing[name] = summarize_pointing(results)
    return {"pointing": pointing, "attention": attention_statistics(item.attention for item in generated)}


def grounding_report(model, processor, dataset, *, batch_size: int = 16, progress: bool = False, **decoding) -> dict:
    """Caption a data set (`image`, `captions`, `image_id`, optional `objects` columns) and score captions and
    grounding together, so that sharper attention is never bought with worse captions unnoticed.

    Returns `{"num_images", "exact", "metrics", "pointing": {scorer: summarize_pointing(...)}, "attention":
    attention_statistics(...)}`; `exact` is the share of captions equal to one of their references.
    """
    from .metrics import compute_caption_metrics
    from .pipeline_show_attend_tell import caption_images

    rows = dataset.remove_columns("image").to_list()
    model.eval()
    generated = caption_images(model, processor, dataset["image"], batch_size=batch_size, progress=progress, **decoding)
    metrics = compute_caption_metrics(
        {row["image_id"]: item.text for row, item in zip(rows, generated, strict=True)},
        {row["image_id"]: row["captions"] for row in rows},
    )
    exact = sum(item.text in row["captions"] for row, item in zip(rows, generated, strict=True)) / len(rows)
    return {"num_images": len(rows), "exact": exact, "metrics": metrics, **grounding_scores(rows, generated)}


REPORT_HEADERS = ["model", "images", "CIDEr", "BLEU-4", "exact", "scorer", "words", "hit %", "centre %", "random %",
                  "entropy % of uniform", "peak (uniform)"]  # fmt: skip


def report_rows(name: str, report: Mapping[str, Any]) -> list[list[str]]:
    """Markdown table cells (`REPORT_HEADERS`) of a `grounding_report`: one row per pointing scorer."""

    def percent(value: float | None) -> str:
        return "n/a" if value is None else f"{100 * value:.1f}"

    attention, metrics = report["attention"], report["metrics"]
    peak = "n/a" if attention["peak"] is None else f"{attention['peak']:.3f} ({attention['uniform_peak']:.3f})"
    focus = [percent(attention["entropy_ratio"]), peak]
    head = [name, str(report["num_images"]), f"{metrics['CIDEr']:.3f}", f"{metrics['BLEU-4']:.3f}"]
    head.append(percent(report["exact"]))
    rows = []
    for scorer, summary in report["pointing"].items() or [("-", None)]:
        if summary is None:
            rows.append([*head, "-", "0", "n/a", "n/a", "n/a", *focus])
            continue
        overall = summary["overall"]
        rates = [percent(overall[key]) for key in ("hit_rate", "center_baseline", "random_baseline")]
        rows.append([*head, scorer, str(overall["words"]), *rates, *focus])
    return rows


def report_table(reports: Mapping[str, Mapping[str, Any]]) -> str:
    """A markdown table of named `grounding_report`s."""
    lines = ["| " + " | ".join(REPORT_HEADERS) + " |", "|" + "---|" * len(REPORT_HEADERS)]
    for name, report in reports.items():
        lines += ["| " + " | ".join(row) + " |" for row in report_rows(name, report)]
    return "\n".join(lines)


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
    "grounding_report",
    "grounding_scores",
    "pair_head_mentions",
    "pair_mentions",
    "phrase_mentions",
    "point_in_boxes",
    "pointing_game",
    "random_cell_hit_rate",
    "report_rows",
    "report_table",
    "scorers_for",
    "summarize_pointing",
]
