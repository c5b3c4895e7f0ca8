"""Sentence-level BLEU-4 for rewards: pycocoevalcap's per-caption BLEU without Java or its corpus bookkeeping.

`SentenceBleu(references)` keeps, per image, the reference lengths and the clipped (maximum) n-gram counts once;
`scorer.score(candidates, image_indices)` then gives each candidate's BLEU-4 against the references of its image. The
result equals the per-caption scores of pycocoevalcap's `Bleu(4).compute_score` (its second return value, `[3]`)
on the same tokenised captions:

- modified precision of n = 1..4: clipped n-gram matches `(correct + 1e-15) / (guessed + 1e-9)` (so a caption
  without any match scores 0 rather than dividing by zero);
- the geometric mean of the four precisions;
- the brevity penalty `exp(1 - reference / candidate length)` when the candidate is shorter than the reference length
  closest to its own (ties go to the shorter reference).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

from .cider import MAX_N, ngram_counts

TINY, SMALL = 1e-15, 1e-9  # pycocoevalcap's smoothing constants


class SentenceBleu:
    """BLEU-4 of single captions against a fixed reference set (`references[i]`: image i's tokenised captions)."""

    def __init__(self, references: Sequence[Sequence[Sequence[Hashable]]]):
        if len(references) == 0:
            raise ValueError("references: empty; expected one list of reference captions per image")
        self.reference_lengths: list[list[int]] = []
        self.max_counts: list[Counter] = []
        for index, image in enumerate(references):
            if isinstance(image, str) or len(image) == 0:
                raise ValueError(f"references[{index}]: expected a non-empty list of tokenised captions, got {image!r}")
            self.reference_lengths.append([len(caption) for caption in image])
            self.max_counts.append(Counter())
            for caption in image:
                self.max_counts[-1] |= ngram_counts(caption)  # `|` keeps the larger count of each n-gram

    def score(self, candidates: Sequence[Sequence[Hashable]], image_indices: Sequence[int]) -> np.ndarray:
        """BLEU-4 of each candidate against the references of `image_indices[i]`; `(len(candidates),)` float64."""
        image_indices = [int(index) for index in np.asarray(image_indices).reshape(-1)]
        if len(image_indices) != len(candidates):
            raise ValueError(f"image_indices: {len(image_indices)} indices for {len(candidates)} candidates")
        if any(not 0 <= index < len(self.max_counts) for index in image_indices):
            raise ValueError(f"image_indices: expected indices in 0..{len(self.max_counts) - 1}, got {image_indices}")
        pairs = zip(candidates, image_indices, strict=True)
        return np.asarray([self._bleu4(tuple(tokens), image) for tokens, image in pairs], dtype=np.float64)

    def _bleu4(self, tokens: tuple, image: int) -> float:
        correct = [0] * MAX_N
        for ngram, count in ngram_counts(tokens).items():
            correct[len(ngram) - 1] += min(self.max_counts[image].get(ngram, 0), count)
        precision = math.prod(
            (correct[n] + TINY) / (max(0, len(tokens) - n) + SMALL) for n in range(MAX_N)
        )  # n-grams of n + 1 tokens
        bleu = precision ** (1.0 / MAX_N)
        closest = min(self.reference_lengths[image], key=lambda length: (abs(length - len(tokens)), length))
        ratio = (len(tokens) + TINY) / (closest + SMALL)
        return bleu * math.exp(1 - 1 / ratio) if ratio < 1 else bleu


__all__ = ["SentenceBleu"]
