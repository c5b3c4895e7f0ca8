"""One table of caption metrics (`show_attend_tell.metrics.CAPTION_METRICS`): the training flag's choices, the
evaluation script's markdown and the model card's metric types all come from it."""

from __future__ import annotations

from model_card.generator import METRIC_TYPES
from show_attend_tell.metrics import CAPTION_METRICS, METRIC_NAMES, SPICE_NAME
from show_attend_tell.reporting import metrics_markdown
from training.args import build_parser


def test_names_are_unique_and_the_optional_one_is_spice():
    names = [metric.name for metric in CAPTION_METRICS]
    assert len(set(names)) == len(names)
    assert [metric.name for metric in CAPTION_METRICS if metric.optional] == [SPICE_NAME]
    assert METRIC_NAMES == ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")  # metrics.json keys


def test_flag_choices_come_from_the_table():
    (action,) = [action for action in build_parser()._actions if action.dest == "metric_for_best_model"]
    assert tuple(action.choices) == (*METRIC_NAMES, "loss")  # validation computes every non-optional metric


def test_evaluation_markdown_comes_from_the_table():
    scores = {metric.name: (index + 1) / 100 for index, metric in enumerate(CAPTION_METRICS)}
    report = {"model": "m", "dataset": "d", "split": "test", "num_images": 1, "metrics": dict(reversed(scores.items()))}
    report["decoding"] = {"num_beams": 3, "length_penalty": 1.0, "max_new_tokens": 30}
    header, _, values = metrics_markdown(report).splitlines()[4:7]
    assert header == "| " + " | ".join(metric.name for metric in CAPTION_METRICS) + " |"  # the table's order
    assert values == "| " + " | ".join(f"{index}.0" for index in range(1, len(CAPTION_METRICS) + 1)) + " |"


def test_card_metric_types_come_from_the_table():
    assert METRIC_TYPES == {metric.name: metric.hub_type for metric in CAPTION_METRICS}
    assert set(METRIC_TYPES.values()) == {"bleu", "meteor", "rouge", "cider", "spice"}
