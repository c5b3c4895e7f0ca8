"""A fast CIDEr-D for rewards and quick evaluation: pycocoevalcap's numbers without Java or per-pair Python loops.

`CiderD(references)` computes the n-gram document frequencies of a fixed reference set once (for example every
training image's captions); `scorer.score(candidates, image_indices)` then scores a batch of candidates, each against
the references of its image, in a few vectorised numpy operations. The result equals pycocoevalcap's
`Cider().compute_score` on the same tokenised captions when `references` is exactly the set pycocoevalcap sees:

- n-grams of 1..4 tokens, tf-idf weights `tf * (log(number of images) - log(max(1, document frequency)))`, where the
  document frequency of an n-gram is the number of images whose references contain it;
- per n, the clipped cosine `sum(min(candidate, reference) * reference) / (|candidate| * |reference|)` (norms are the
  unclipped ones), times a Gaussian length penalty `exp(-delta^2 / (2 * sigma^2))` with sigma 6;
- the mean over n and over the image's references, times 10.

Like pycocoevalcap, the "length" in the penalty is the number of bigrams (`max(tokens - 1, 0)`), not of tokens.
Captions are sequences of tokens (words or token ids, anything hashable); tokenisation is the caller's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Sequence

import numpy as np

MAX_N = 4
SIGMA = 6.0


def ngram_counts(tokens: Sequence[Hashable], max_n: int = MAX_N) -> Counter:
    """Term frequencies of the 1..max_n-grams of one caption (n-grams as tuples)."""
    tokens = tuple(tokens)
    return Counter(tokens[start : start + n] for n in range(1, max_n + 1) for start in range(len(tokens) - n + 1))


def penalty_length(tokens: Sequence[Hashable]) -> int:
    """The caption length pycocoevalcap's length penalty uses: its number of bigrams."""
    return max(len(tokens) - 1, 0)


class CiderD:
    """CIDEr-D against a fixed reference set.

    Args:
        references: for each image (indexed 0..N-1), its reference captions as token sequences; every image needs at
            least one reference. Document frequencies and `log(N)` come from this whole set.
        sigma: the width of the Gaussian length penalty.
    """

    def __init__(self, references: Sequence[Sequence[Sequence[Hashable]]], sigma: float = SIGMA):
        if len(references) == 0:
            raise ValueError("references: empty; expected one list of reference captions per image")
        for index, image_references in enumerate(references):
            if isinstance(image_references, str) or len(image_references) == 0:
                raise ValueError(
                    f"references[{index}]: expected a non-empty list of tokenised captions, got {image_references!r}"
                )
        self.sigma = sigma
        self.num_images = len(references)
        self.log_num_images = np.log(float(self.num_images))
        reference_counts = [[ngram_counts(caption) for caption in image] for image in references]
        self.ngram_ids: dict[tuple, int] = {}
        document_frequency: list[int] = []
        for image in reference_counts:
            for ngram in set().union(*image):
                index = self.ngram_ids.setdefault(ngram, len(document_frequency))
                if index == len(document_frequency):
                    document_frequency.append(0)
                document_frequency[index] += 1
        self.idf = self.log_num_images - np.log(np.maximum(1.0, np.asarray(document_frequency, dtype=np.float64)))
        self.ngram_order = np.asarray([len(ngram) - 1 for ngram in self.ngram_ids], dtype=np.int64)
        self._index_references(references, reference_counts)

    def _index_references(self, references, reference_counts) -> None:
        """Reference tf-idf values as a table keyed by (image, n-gram) with one column per reference slot, plus
        per-reference norms, lengths and a mask (images have different numbers of references)."""
        slots = max(len(image) for image in references)
        num_ngrams = len(self.ngram_ids)
        self.reference_mask = np.zeros((self.num_images, slots), dtype=bool)
        self.reference_lengths = np.zeros((self.num_images, slots), dtype=np.float64)
        self.reference_norms = np.zeros((self.num_images, slots, MAX_N), dtype=np.float64)
        keys, slot_index, values = [], [], []
        for image, (captions, counts) in enumerate(zip(references, reference_counts, strict=True)):
            for slot, (caption, caption_counts) in enumerate(zip(captions, counts, strict=True)):
                self.reference_mask[image, slot] = True
                self.reference_lengths[image, slot] = penalty_length(caption)
                ids = np.fromiter((self.ngram_ids[ngram] for ngram in caption_counts), dtype=np.int64)
                weights = np.fromiter(caption_counts.values(), dtype=np.float64) * self.idf[ids]
                np.add.at(self.reference_norms[image, slot], self.ngram_order[ids], weights**2)
                keys.append(image * num_ngrams + ids)
                slot_index.append(np.full(len(ids), slot))
                values.append(weights)
        self.reference_norms = np.sqrt(self.reference_norms)
        keys, slot_index, values = np.concatenate(keys), np.concatenate(slot_index), np.concatenate(values)
        self.keys, key_rows = np.unique(keys, return_inverse=True)  # sorted, for searchsorted lookups
        self.reference_values = np.zeros((len(self.keys), slots), dtype=np.float64)
        self.reference_values[key_rows, slot_index] = values

    def score(self, candidates: Sequence[Sequence[Hashable]], image_indices: Sequence[int]) -> np.ndarray:
        """CIDEr-D of each candidate against the references of `image_indices[i]`; `(len(candidates),)` float64."""
        image_indices = np.asarray(image_indices, dtype=np.int64).reshape(-1)
        if len(image_indices) != len(candidates):
            raise ValueError(f"image_indices: {len(image_indices)} indices for {len(candidates)} candidates")
        if len(image_indices) and (image_indices.min() < 0 or image_indices.max() >= self.num_images):
            raise ValueError(f"image_indices: expected indices in 0..{self.num_images - 1}, got {image_indices}")
        rows, ids, counts = [], [], []
        for row, candidate in enumerate(candidates):
            for ngram, count in ngram_counts(candidate).items():
                rows.append(row)
                ids.append(self.ngram_ids.get(ngram, -1))  # -1: in no reference (document frequency 0)
                counts.append((count, len(ngram) - 1))
        num_candidates = len(candidates)
        rows, ids = np.asarray(rows, dtype=np.int64), np.asarray(ids, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64).reshape(-1, 2)
        known = ids >= 0
        idf = np.where(known, self.idf[np.maximum(ids, 0)], self.log_num_images)
        weights = counts[:, 0] * idf  # candidate tf-idf values, (ngrams,)
        cell = rows * MAX_N + counts[:, 1]  # (candidate, n) of each n-gram
        norms = np.sqrt(np.bincount(cell, weights**2, minlength=num_candidates * MAX_N)).reshape(-1, MAX_N)

        # Reference values of every candidate n-gram for each reference slot of its image (0 where absent).
        keys = image_indices[rows] * len(self.ngram_ids) + np.maximum(ids, 0)
        found = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        present = known & (self.keys[found] == keys)
        reference = np.where(present[:, None], self.reference_values[found], 0.0)  # (ngrams, slots)
        clipped = np.minimum(weights[:, None], reference) * reference
        slots = reference.shape[1]
        numerator = np.zeros((num_candidates * MAX_N, slots))
        np.add.at(numerator, cell, clipped)
        numerator = numerator.reshape(num_candidates, MAX_N, slots).transpose(0, 2, 1)  # (candidates, slots, n)

        denominator = norms[:, None, :] * self.reference_norms[image_indices]  # (candidates, slots, n)
        similarity = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator != 0)
        lengths = np.asarray([penalty_length(candidate) for candidate in candidates], dtype=np.float64)
        delta = lengths[:, None] - self.reference_lengths[image_indices]  # (candidates, slots)
        penalty = np.exp(-(delta**2) / (2 * self.sigma**2))
        mask = self.reference_mask[image_indices]
        per_reference = similarity.mean(axis=2) * penalty * mask
        return 10.0 * per_reference.sum(axis=1) / mask.sum(axis=1)


__all__ = ["CiderD", "ngram_counts", "penalty_length"]
