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
from collections.abc import Hashable, Mapping, Sequence

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

logger = logging.getLogger(__name__)

METRIC_NAMES = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
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


def _spice_score(ground_truth: dict, results: dict) -> float | None:
    """SPICE, or None with a warning when it cannot run (it downloads Stanford CoreNLP on first use)."""
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
    return score


def compute_caption_metrics(
    predictions: Mapping[Hashable, str], references: Mapping[Hashable, Sequence[str]], spice: bool = False
) -> dict[str, float]:
    """Score generated captions against reference captions with pycocoevalcap.

    Args:
        predictions: one generated caption per image id.
        references: one or more reference captions per image id (the same ids as `predictions`).
        spice: also compute SPICE. When it cannot run (for example offline), a warning is issued and the key is absent.

    Returns:
        `{"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}` (+ `"SPICE"`) as floats, equal to
        the corpus-level scores that pycocoevalcap's scorers return for the same captions.
    """
    results, ground_truth = _validate(predictions, references)
    tokenizer = PTBTokenizer()
    ground_truth = tokenizer.tokenize(ground_truth)
    results = tokenizer.tokenize(results)

    bleu, _ = Bleu(4).compute_score(ground_truth, results, verbose=0)
    scores = {f"BLEU-{n}": float(value) for n, value in enumerate(bleu, start=1)}
    scores["METEOR"] = float(_shared_meteor().compute_score(ground_truth, results)[0])
    scores["ROUGE-L"] = float(Rouge().compute_score(ground_truth, results)[0])
    scores["CIDEr"] = float(Cider().compute_score(ground_truth, results)[0])
    if spice:
        spice_value = _spice_score(ground_truth, results)
        if spice_value is not None:
            scores[SPICE_NAME] = spice_value
    return scores


__all__ = ["METRIC_NAMES", "SPICE_NAME", "compute_caption_metrics"]
