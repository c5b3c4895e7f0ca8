"""COCO caption metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D, optional SPICE) computed by pycocoevalcap.

The numbers are pycocoevalcap's own: captions go through its PTB tokenizer (Java), then its `Bleu(4)`, `Meteor`,
`Rouge` and `Cider` scorers (pycocoevalcap's `Cider` is the CIDEr-D variant used on the COCO leaderboard). Scores are
on pycocoevalcap's scale (0-1; CIDEr roughly 0-10), not multiplied by 100.

Edge cases:
- a prediction identical to its references scores BLEU-n = 1 (to about 1e-9: pycocoevalcap's smoothing), METEOR = 1,
  ROUGE-L = 1 and CIDEr = 10 when at least two different images are scored. CIDEr-D takes its n-gram document
  frequencies from the references of the scored images, so a single image (or n-grams shared by every image) gets
  CIDEr 0 even for a perfect caption: evaluate CIDEr on whole splits;
- an empty (or whitespace-only, or punctuation-only) prediction string is allowed and scores 0 for that image;
- an empty set of predictions, image ids present on one side only, an image with no references, a reference that is
  empty, and non-string captions raise `ValueError` naming the image id;
- whitespace inside captions (newlines, tabs, carriage returns) is collapsed to single spaces before tokenisation,
  because the PTB tokenizer is fed one caption per line (this does not change the tokens it produces).
"""

from __future__ import annotations

import atexit
import contextlib
import io
import logging
import threading
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CaptionMetric:
    """One caption metric: its key (in `compute_caption_metrics` results, metrics.json, `--metric_for_best_model` and
    the card's table), the pycocoevalcap scorer that computes it (`SCORERS`; a scorer returns one score per metric it
    serves, `index` picks this one), how the Hub names it (`hub_type`: the `model-index` metric type and the
    https://hf.co/metrics id), and whether it is computed only on request (`optional`: SPICE needs a download)."""

    name: str
    scorer: str
    hub_type: str
    index: int = 0
    optional: bool = False


# The one table of caption metrics, in the order results, tables and cards show them.
CAPTION_METRICS = (
    *(CaptionMetric(f"BLEU-{n}", "Bleu", "bleu", index=n - 1) for n in range(1, 5)),
    CaptionMetric("METEOR", "Meteor", "meteor"),
    CaptionMetric("ROUGE-L", "Rouge", "rouge"),
    CaptionMetric("CIDEr", "Cider", "cider"),
    CaptionMetric("SPICE", "Spice", "spice", optional=True),
)
METRIC_NAMES = tuple(metric.name for metric in CAPTION_METRICS if not metric.optional)  # always computed
SPICE_NAME = "SPICE"

_meteor: Meteor | None = None
_meteor_lock = threading.Lock()


def _clean(caption: object, where: str) -> str:
    if not isinstance(caption, str):
        raise ValueError(f"{where}: caption must be a string, got {type(caption).__name__} {caption!r}")
    return " ".join(caption.split())


def _validate(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]]
) -> tuple[dict[Hashable, list[dict]], dict[Hashable, list[dict]]]:
    """Check the inputs and return them in pycocoevalcap's `{image_id: [{"caption": str}, ...]}` layout."""
    if not isinstance(predictions, Mapping) or not isinstance(references, Mapping):
        raise ValueError(
            "predictions and references must be dicts keyed by image id, got "
            f"{type(predictions).__name__} and {type(references).__name__}"
        )
    if len(predictions) == 0:
        raise ValueError("predictions is empty: need at least one image to score")
    missing = [image_id for image_id in predictions if image_id not in references]
    extra = [image_id for image_id in references if image_id not in predictions]
    if missing or extra:
        raise ValueError(
            "predictions and references must have the same image ids: "
            f"{len(missing)} prediction id(s) without references (e.g. {missing[:5]!r}), "
            f"{len(extra)} reference id(s) without a prediction (e.g. {extra[:5]!r})"
        )
    results, ground_truth = {}, {}
    for image_id, prediction in predictions.items():
        results[image_id] = [{"caption": _clean(prediction, f"predictions[{image_id!r}]")}]
        captions = references[image_id]
        if isinstance(captions, str) or not isinstance(captions, Sequence):
            raise ValueError(
                f"references[{image_id!r}]: expected a list of caption strings, got {type(captions).__name__}"
            )
        if len(captions) == 0:
            raise ValueError(f"references[{image_id!r}] is empty: every image needs at least one reference caption")
        cleaned = [_clean(caption, f"references[{image_id!r}][{index}]") for index, caption in enumerate(captions)]
        for index, caption in enumerate(cleaned):
            if not caption:
                raise ValueError(f"references[{image_id!r}][{index}] is an empty caption")
        ground_truth[image_id] = [{"caption": caption} for caption in cleaned]
    return results, ground_truth


def _shared_meteor() -> Meteor:
    """One METEOR Java process per Python process: starting it (loading its paraphrase table) takes ~10 s."""
    global _meteor
    with _meteor_lock:
        if _meteor is None or _meteor.meteor_p.poll() is not None:
            _meteor = Meteor()
        return _meteor


@atexit.register
def _close_meteor() -> None:
    global _meteor
    if _meteor is not None:
        _meteor.meteor_p.stdin.close()
        _meteor.meteor_p.kill()
        _meteor.meteor_p.wait()
        _meteor = None


def _spice_scores(ground_truth: dict, results: dict) -> list[float] | None:
    """[SPICE], or None with a warning when it cannot run (it downloads Stanford CoreNLP on first use)."""
    try:
        from pycocoevalcap.spice.spice import Spice

        with contextlib.redirect_stdout(io.StringIO()):
            score, _ = Spice().compute_score(ground_truth, results)
        score = float(score)
    except Exception as error:  # network, Java memory or missing-model failures all mean "SPICE unavailable"
        warnings.warn(
            f"SPICE was requested but could not run, so it is left out of the results ({type(error).__name__}: "
            f"{error}). SPICE needs Java with ~8 GB of heap and downloads Stanford CoreNLP 3.6.0 on first use.",
            stacklevel=3,
        )
        return None
    return [score]


# pycocoevalcap scorer -> its scores on tokenised `(ground_truth, results)` (None: it could not run).
SCORERS: dict[str, Callable[[dict, dict], list[float] | None]] = {
    "Bleu": lambda ground_truth, results: Bleu(4).compute_score(ground_truth, results, verbose=0)[0],
    "Meteor": lambda ground_truth, results: [_shared_meteor().compute_score(ground_truth, results)[0]],
    "Rouge": lambda ground_truth, results: [Rouge().compute_score(ground_truth, results)[0]],
    "Cider": lambda ground_truth, results: [Cider().compute_score(ground_truth, results)[0]],
    "Spice": _spice_scores,  # called directly, so that its warning points at the caller of compute_caption_metrics
}


def compute_caption_metrics(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]], spice: bool = False
) -> dict[str, float]:
    """Score generated captions against reference captions with pycocoevalcap.

    Args:
        predictions: one generated caption per image id.
        references: one or more reference captions per image id (the same ids as `predictions`).
        spice: also compute SPICE. When it cannot run (for example offline), a warning is issued and the key is absent.

    Returns:
        The scores of `CAPTION_METRICS` in its order (`METRIC_NAMES`: BLEU-1..4, METEOR, ROUGE-L, CIDEr, + `"SPICE"`)
        as floats, equal to the corpus-level scores that pycocoevalcap's scorers return for the same captions.
    """
    results, ground_truth = _validate(predictions, references)
    tokenizer = PTBTokenizer()
    ground_truth = tokenizer.tokenize(ground_truth)
    results = tokenizer.tokenize(results)

    wanted = [metric for metric in CAPTION_METRICS if spice or not metric.optional]
    computed = {}  # each scorer runs once (Bleu serves four metrics)
    for metric in wanted:
        if metric.scorer not in computed:
            computed[metric.scorer] = SCORERS[metric.scorer](ground_truth, results)
    return {
        metric.name: float(computed[metric.scorer][metric.index])
        for metric in wanted
        if computed[metric.scorer] is not None
    }


__all__ = ["CAPTION_METRICS", "METRIC_NAMES", "SCORERS", "SPICE_NAME", "CaptionMetric", "compute_caption_metrics"]
