"""The reward metrics equal pycocoevalcap on the same tokenised captions, candidate by candidate: the fast CIDEr-D
and the sentence-level BLEU-4."""

from __future__ import annotations

import time

import numpy as np
import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

from show_attend_tell.metrics.bleu import SentenceBleu
from show_attend_tell.metrics.cider import CiderD, penalty_length
from tests.conftest import read_metadata


def tokenise(caption: str) -> list[str]:
    return caption.lower().replace(".", " ").replace(",", " ").split()


def pycocoevalcap_scores(candidates: list[list[str]], references: list[list[list[str]]]) -> np.ndarray:
    """pycocoevalcap's per-image CIDEr-D, one candidate per image (its reference set defines the frequencies)."""
    results = {index: [" ".join(candidate)] for index, candidate in enumerate(candidates)}
    ground_truth = {index: [" ".join(caption) for caption in image] for index, image in enumerate(references)}
    return np.asarray(Cider().compute_score(ground_truth, results)[1])


@pytest.fixture(scope="module")
def references(coco_mini) -> list[list[list[str]]]:
    return [[tokenise(caption) for caption in row["captions"]] for row in read_metadata(coco_mini / "test")[:12]]


def candidate_sets(references: list[list[list[str]]]) -> dict[str, list[list[str]]]:
    count = len(references)
    first_words = [image[0][:1] for image in references]
    return {
        "own first reference": [image[0] for image in references],
        "another image's reference": [references[(index + 1) % count][1] for index in range(count)],
        "repeated words": [image[0][:2] * 6 for image in references],
        "one word, empty and two words": [first_words[i] if i % 3 == 0 else [] if i % 3 == 1 else ["a", "man"]
                                          for i in range(count)],
        "very long": [sum(image, []) + ["zebra", "unseen"] * 5 for image in references],
        "words outside every reference": [["qwerty", "asdf", "a", "qwerty"] for _ in range(count)],
    }  # fmt: skip


CANDIDATE_SETS = [
    "own first reference",
    "another image's reference",
    "repeated words",
    "one word, empty and two words",
    "very long",
    "words outside every reference",
]


@pytest.mark.parametrize("name", CANDIDATE_SETS)
def test_equals_pycocoevalcap(references, name):
    candidates = candidate_sets(references)[name]
    expected = pycocoevalcap_scores(candidates, references)
    scores = CiderD(references).score(candidates, range(len(candidates)))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-6)
    assert expected.max() > 0 or name == "words outside every reference"  # the case exercises the scoring


def test_equals_pycocoevalcap_with_uneven_reference_counts_and_several_candidates_per_image(references):
    uneven = [image[: 1 + index % 5] for index, image in enumerate(references)]
    scorer = CiderD(uneven)
    # The same image scored with several candidates in one batch, in any order, each as pycocoevalcap would.
    candidates = [uneven[3][0][:5], uneven[3][-1], uneven[0][0] + ["a", "a"], uneven[0][0][:-1]]
    image_indices = [3, 3, 0, 0]
    for candidate, image, score in zip(candidates, image_indices, scorer.score(candidates, image_indices), strict=True):
        others = [uneven[i][0] for i in range(len(uneven))]
        others[image] = candidate
        assert score == pytest.approx(pycocoevalcap_scores(others, uneven)[image], abs=1e-6)


def test_length_penalty_counts_bigrams_and_clipping_caps_repeats(references):
    scorer = CiderD(references)
    reference = references[0][0]
    assert penalty_length(["a"]) == penalty_length([]) == 0
    repeated = reference + reference  # every n-gram twice: clipped, so no gain over the reference itself
    exact, doubled = scorer.score([reference, repeated], [0, 0])
    assert doubled < exact


def test_batch_of_sampled_captions_scores_in_milliseconds(references):
    scorer = CiderD(references)
    rng = np.random.default_rng(0)
    vocabulary = sorted({word for image in references for caption in image for word in caption})
    candidates = [list(rng.choice(vocabulary, size=rng.integers(1, 16))) for _ in range(160)]
    image_indices = rng.integers(0, len(references), size=len(candidates))
    start = time.perf_counter()
    scores = scorer.score(candidates, image_indices)
    elapsed = time.perf_counter() - start
    assert scores.shape == (160,) and np.isfinite(scores).all()
    assert elapsed < 0.1, f"160 candidates took {elapsed * 1000:.1f} ms"


def test_bad_inputs_name_the_input(references):
    with pytest.raises(ValueError, match=r"references\[1\]"):
        CiderD([references[0], []])
    scorer = CiderD(references)
    with pytest.raises(ValueError, match="image_indices"):
        scorer.score([["a"]], [len(references)])
    with pytest.raises(ValueError, match="image_indices"):
        scorer.score([["a"], ["b"]], [0])


@pytest.mark.parametrize("name", CANDIDATE_SETS)
def test_sentence_bleu4_equals_pycocoevalcap(references, name):
    candidates = candidate_sets(references)[name]
    results = {index: [" ".join(candidate)] for index, candidate in enumerate(candidates)}
    ground_truth = {index: [" ".join(caption) for caption in image] for index, image in enumerate(references)}
    expected = np.asarray(Bleu(4).compute_score(ground_truth, results, verbose=0)[1][3])
    scores = SentenceBleu(references).score(candidates, range(len(candidates)))
    np.testing.assert_allclose(scores, expected, rtol=0, atol=1e-12)
    assert not name.startswith("own") or np.allclose(scores, 1.0)
