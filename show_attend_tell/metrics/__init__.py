"""Caption metrics: a plain-Python API and an `evaluate` metric module, both computed by pycocoevalcap.

```python
from show_attend_tell.metrics import compute_caption_metrics, load_coco_caption_metric

compute_caption_metrics({"1": "a dog runs"}, {"1": ["A dog is running.", "A brown dog runs on grass."]})
metric = load_coco_caption_metric()  # == evaluate.load(str(COCO_CAPTION_METRIC_PATH))
metric.compute(predictions=["a dog runs"], references=[["A dog is running.", "A brown dog runs on grass."]])
```
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .caption_metrics import CAPTION_METRICS, METRIC_NAMES, SPICE_NAME, CaptionMetric, compute_caption_metrics

if TYPE_CHECKING:
    import evaluate

COCO_CAPTION_METRIC_PATH = Path(__file__).resolve().parent / "coco_caption"


def load_coco_caption_metric(**kwargs) -> evaluate.EvaluationModule:
    """`evaluate.load()` of the `coco_caption` metric script shipped in this package (works offline)."""
    import evaluate

    return evaluate.load(str(COCO_CAPTION_METRIC_PATH), **kwargs)


__all__ = [
    "CAPTION_METRICS",
    "COCO_CAPTION_METRIC_PATH",
    "METRIC_NAMES",
    "SPICE_NAME",
    "CaptionMetric",
    "compute_caption_metrics",
    "load_coco_caption_metric",
]
