"""How focused attention is: the entropy and peak weight of per-word attention maps, against a uniform map's."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from .pointing import as_numpy


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
        maps = as_numpy(maps)
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


__all__ = ["attention_statistics"]
