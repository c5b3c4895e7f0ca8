"""The caption metrics equal pycocoevalcap's own COCO evaluation (COCOEvalCap) on real coco-mini reference captions."""

from __future__ import annotations

import contextlib
import io

import pytest
from pycocotools.coco import COCO

from show_attend_tell.metrics import (
    COCO_CAPTION_METRIC_PATH,
    METRIC_NAMES,
    caption_metrics,
    compute_caption_metrics,
    load_coco_caption_metric,
)
from tests.conftest import read_metadata

# Hand-made predictions for the first coco-mini test images (by position); "" checks that an empty caption is scored.
HAND_MADE = [
    "a laptop computer on a desk next to a lamp",
    "cars parked on a street in front of a building",
    "",
    "a man riding a horse on a beach",
    "a plate of food with broccoli and rice",
    "a group of people standing in a kitchen",
    "A red double decker bus driving down the street.",
    "a cat sitting on top of a wooden bench",
]


@pytest.fixture(scope="module")
def captions(coco_mini) -> tuple[dict[str, str], dict[str, list[str]]]:
    rows = read_metadata(coco_mini / "test")[: len(HAND_MADE)]
    predictions = {row["source_id"]: text for row, text in zip(rows, HAND_MADE, strict=True)}
    # One prediction copied from another image's references: scored, but not a match for its own image.
    predictions[rows[-1]["source_id"]] = rows[0]["captions"][0]
    references = {row["source_id"]: row["captions"] for row in rows}
    return predictions, references


@pytest.fixture(scope="module")
def ours(captions) -> dict[str, float]:
    return compute_caption_metrics(*captions)


@pytest.fixture(scope="module")
def official(captions) -> dict[str, float]:
    """pycocoevalcap's COCOEvalCap driver on COCO-format objects (its SPICE step replaced: it needs the network)."""
    import pycocoevalcap.eval

    predictions, references = captions
    ids = {image_id: index for index, image_id in enumerate(references)}
    ground_truth = COCO()
    ground_truth.dataset = {
        "images": [{"id": index} for index in ids.values()],
        "annotations": [
            {"image_id": ids[image_id], "id": len(ids) * ids[image_id] + n, "caption": caption}
            for image_id, refs in references.items()
            for n, caption in enumerate(refs)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground_truth.createIndex()
        results = ground_truth.loadRes([{"image_id": ids[i], "caption": c} for i, c in predictions.items()])

    class NoSpice:
        def compute_score(self, gts, res):
            return 0.0, [0.0] * len(gts)

        def method(self):
            return "SPICE"

    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(io.StringIO()):
        patch.setattr(pycocoevalcap.eval, "Spice", NoSpice)
        # Same METEOR jar and settings; reusing the already started Java process saves ~10 s of start-up.
        patch.setattr(pycocoevalcap.eval, "Meteor", caption_metrics._shared_meteor)
        evaluator = pycocoevalcap.eval.COCOEvalCap(ground_truth, results)
        evaluator.evaluate()
    names = {"Bleu_1": "BLEU-1", "Bleu_2": "BLEU-2", "Bleu_3": "BLEU-3", "Bleu_4": "BLEU-4"}
    names |= {"METEOR": "METEOR", "ROUGE_L": "ROUGE-L", "CIDEr": "CIDEr"}
    return {ours: float(evaluator.eval[theirs]) for theirs, ours in names.items()}


def test_numbers_equal_pycocoevalcap(ours, official):
    assert list(ours) == list(METRIC_NAMES)
    assert all(isinstance(value, float) for value in ours.values())
    assert ours == official
    # Not a degenerate comparison: real, partly matching captions give non-trivial scores.
    assert 0.3 < ours["BLEU-1"] < 0.95 and 0.0 < ours["BLEU-4"] < ours["BLEU-1"]
    assert 0.0 < ours["CIDEr"] < 10.0 and 0.0 < ours["METEOR"] < 1.0


def test_evaluate_module_gives_the_same_numbers(captions, ours, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    metric = load_coco_caption_metric()
    assert metric.name == "coco_caption"
    assert set(metric.features) == {"predictions", "references"}
    predictions, references = captions
    ids = list(predictions)
    results = metric.compute(predictions=[predictions[i] for i in ids], references=[references[i] for i in ids])
    assert results == ours


def test_evaluate_module_loads_by_path_and_counts_lengths(monkeypatch):
    import evaluate

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    metric = evaluate.load(str(COCO_CAPTION_METRIC_PATH))
    with pytest.raises(ValueError, match="[Mm]ismatch"):
        metric.compute(predictions=["a dog", "a cat"], references=[["a dog runs"]])


def test_identical_captions_score_perfectly_on_two_or_more_images():
    references = {"dog": ["a brown dog runs on the grass"], "bus": ["a red bus drives down a city street"]}
    scores = compute_caption_metrics({key: refs[0] for key, refs in references.items()}, references)
    for n in range(1, 5):
        assert scores[f"BLEU-{n}"] == pytest.approx(1.0, abs=1e-8)
    assert scores["METEOR"] == 1.0 and scores["ROUGE-L"] == 1.0
    assert scores["CIDEr"] == pytest.approx(10.0)


def test_single_image_gets_cider_zero_as_documented():
    scores = compute_caption_metrics({"1": "a brown dog runs"}, {"1": ["A brown dog runs."]})
    assert scores["ROUGE-L"] == 1.0 and scores["CIDEr"] == 0.0


def test_empty_and_punctuation_only_predictions_score_zero():
    references = {"a": ["a dog runs on the grass"], "b": ["two cats sleep on a bed"]}
    scores = compute_caption_metrics({"a": "", "b": " ... "}, references)
    assert scores == {name: 0.0 for name in METRIC_NAMES}


def test_line_breaks_inside_captions_do_not_shift_captions_between_images():
    references = {"a": ["a dog runs on the grass"], "b": ["two cats sleep on a bed"], "c": ["a red bus"]}
    flat = compute_caption_metrics({"a": "a dog runs", "b": "two cats", "c": "a bus"}, references)
    broken = compute_caption_metrics({"a": "a dog\rruns", "b": "two\ncats", "c": "a\u2028bus"}, references)
    assert broken == flat


@pytest.mark.parametrize(
    "predictions, references, message",
    [
        ({}, {}, "predictions is empty"),
        ({"1": "a dog"}, {"2": ["a dog"]}, r"same image ids.*'1'.*'2'"),
        ({"1": "a dog", "2": "a cat"}, {"1": ["a dog"]}, r"1 prediction id\(s\) without references.*'2'"),
        ({"1": "a dog"}, {"1": []}, r"references\['1'\] is empty"),
        ({"1": "a dog"}, {"1": ["a dog", "  "]}, r"references\['1'\]\[1\] is an empty caption"),
        ({"1": "a dog"}, {"1": "a dog"}, r"references\['1'\]: expected a list"),
        ({"1": None}, {"1": ["a dog"]}, r"predictions\['1'\]: caption must be a string"),
        (["a dog"], [["a dog"]], "dicts keyed by image id"),
    ],
)
def test_bad_inputs_raise_clear_errors(predictions, references, message):
    with pytest.raises(ValueError, match=message):
        compute_caption_metrics(predictions, references)


def test_spice_that_cannot_run_is_skipped_with_a_warning(monkeypatch):
    import pycocoevalcap.spice.spice

    def unavailable(self):
        raise OSError("cannot download Stanford CoreNLP")

    monkeypatch.setattr(pycocoevalcap.spice.spice.Spice, "__init__", unavailable)
    references = {"a": ["a dog runs on the grass"], "b": ["two cats sleep on a bed"]}
    with pytest.warns(UserWarning, match="SPICE was requested but could not run.*CoreNLP"):
        scores = compute_caption_metrics({"a": "a dog", "b": "two cats"}, references, spice=True)
    assert list(scores) == list(METRIC_NAMES)
