"""The one evaluation of a captioner on a data set: caption metrics, attention grounding and focus, side by side.

    dataset --caption_images--> [Caption] --score_captions--> EvaluationReport(metrics, exact, grounding, pointing,
                                                                               attention, captions)

`evaluate_captioner` captions a data set through the library's one inference path (`caption_images`) and scores the
captions with `score_captions`, so that sharper attention is never bought with worse captions unnoticed. The
evaluation script (`training/evaluate_captioner.py`), validation during training (`training/validation.py`, which
captions its share of the images itself and scores them here), the grounding benchmarks and the tests all use it;
`show_attend_tell.reporting` turns reports into markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .grounding.focus import attention_statistics
from .grounding.pointing import LabelFunction, MentionFunction, pointing_game, summarize_pointing
from .grounding.scorers import COCO_SCORERS, scorers_for
from .metrics import compute_caption_metrics
from .pipeline_show_attend_tell import Caption, caption_images

# The grounding score of `metrics.json` and model cards: COCO object words at the map of the step that chose them
# (docs/grounding.md, "Which map for a noun": on shapes far better than the word's own map, on photos no worse).
GROUNDING_SCORER = "choosing step"


@dataclass
class EvaluationReport:
    """Scores of one caption per image of a data set.

    Args:
        image_ids: the data set's `image_id` per caption.
        captions: the generated `Caption`s (text, words, per-word attention, the photo when it was captioned here).
        metrics: `compute_caption_metrics` of the captions against the data set's references.
        exact: the share of captions equal to one of their references.
        grounding: `summarize_pointing` of COCO object words over the images with object boxes (None without boxes).
        pointing: `summarize_pointing` per scorer of `scorers_for(rows)` (the shapes scorers on the built-in scenes,
            the COCO ones on photos with COCO boxes; empty without boxes).
        attention: `attention_statistics` of all captions (entropy and peak weight against a uniform map's).
    """

    image_ids: list[Any]
    captions: list[Caption]
    metrics: dict[str, float]
    exact: float
    grounding: dict[str, dict] | None
    pointing: dict[str, dict]
    attention: dict[str, float | int | None]

    @property
    def num_images(self) -> int:
        return len(self.captions)

    @property
    def predictions(self) -> list[dict[str, Any]]:
        """`[{"image_id", "caption"}]`, the content of `predictions.json`."""
        return [
            {"image_id": image_id, "caption": caption.text}
            for image_id, caption in zip(self.image_ids, self.captions, strict=True)
        ]

    def scores(self) -> dict[str, Any]:
        """JSON-ready scores (no captions): `num_images`, `exact`, `metrics`, `grounding`, `pointing`, `attention`."""
        return {
            "num_images": self.num_images,
            "exact": self.exact,
            "metrics": self.metrics,
            "grounding": self.grounding,
            "pointing": self.pointing,
            "attention": self.attention,
        }


def has_boxes(row: Mapping[str, Any]) -> bool:
    """Whether a data set row has object boxes to score grounding on."""
    objects = row.get("objects")
    return bool(objects and objects.get("bbox"))


def _pointing_summary(
    rows: Sequence[Mapping[str, Any]], captions: Sequence[Caption], mentions: MentionFunction, labels: LabelFunction
) -> dict[str, dict]:
    results = []
    for row, caption in zip(rows, captions, strict=True):
        if has_boxes(row):
            if caption.image is None:
                raise ValueError(
                    f"image {row['image_id']!r} has object boxes but its caption holds no image to measure them on: "
                    "caption it with caption_images, or leave the 'objects' column out"
                )
            objects = row["objects"]
            results += pointing_game(
                caption.words, caption.attention, caption.image.size, objects, mentions=mentions, labels=labels
            )
    return summarize_pointing(results)


def score_captions(
    rows: Sequence[Mapping[str, Any]], captions: Sequence[Caption], *, spice: bool = False
) -> EvaluationReport:
    """Score one generated caption per data set row.

    Args:
        rows: data set rows without their image: `image_id`, `captions` (the references) and, optionally, `objects`
            (`{"bbox", "category"}` and, on the shapes scenes, `color`) in pixels of the captioned photo.
        captions: one `Caption` per row (`caption_images`); rows with boxes need the caption's `image`.
        spice: also compute SPICE (`compute_caption_metrics`).
    """
    if len(rows) != len(captions):
        raise ValueError(f"score_captions needs one caption per row: got {len(captions)} captions for {len(rows)} rows")
    image_ids = [row["image_id"] for row in rows]
    metrics = compute_caption_metrics(
        {row["image_id"]: caption.text for row, caption in zip(rows, captions, strict=True)},
        {row["image_id"]: row["captions"] for row in rows},
        spice=spice,
    )
    exact = sum(caption.text in row["captions"] for row, caption in zip(rows, captions, strict=True)) / len(rows)
    boxed = any(has_boxes(row) for row in rows)
    return EvaluationReport(
        image_ids=image_ids,
        captions=list(captions),
        metrics=metrics,
        exact=exact,
        grounding=_pointing_summary(rows, captions, *COCO_SCORERS[GROUNDING_SCORER]) if boxed else None,
        pointing={
            name: _pointing_summary(rows, captions, mentions, labels)
            for name, (mentions, labels) in scorers_for(rows).items()
        },
        attention=attention_statistics(caption.attention for caption in captions),
    )


def evaluate_captioner(
    model: Any,
    processor: Any,
    dataset: Any,
    *,
    batch_size: int = 16,
    spice: bool = False,
    progress: bool = False,
    **decoding: Any,
) -> EvaluationReport:
    """Caption every image of `dataset` with `caption_images` and score the captions (`score_captions`).

    Args:
        model: a Show-Attend-Tell model (put in eval mode here).
        processor: its processor.
        dataset: a `datasets.Dataset` with `image`, `captions`, `image_id` and, optionally, `objects` columns.
        batch_size: images per `generate()` call.
        spice: also compute SPICE.
        progress: show a progress bar.
        decoding: `generate()` settings that override the model's `generation_config` (`None` values are ignored);
            one caption per image is scored, so `num_return_sequences` must be 1.
    """
    if decoding.get("num_return_sequences") not in (None, 1):
        raise ValueError("evaluation scores one caption per image: num_return_sequences must be 1")
    rows = dataset.remove_columns("image").to_list()
    model.eval()
    captions = caption_images(model, processor, dataset["image"], batch_size=batch_size, progress=progress, **decoding)
    return score_captions(rows, captions, spice=spice)


__all__ = ["GROUNDING_SCORER", "EvaluationReport", "evaluate_captioner", "has_boxes", "score_captions"]
