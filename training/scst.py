"""Self-critical sequence training (Rennie et al. 2017): optimise the CIDEr-D of sampled captions directly.

One SCST step on a batch of images:
1. draw `samples` captions per image with the model's own `generate(do_sample=True, num_return_sequences=samples)`
   (ancestral sampling: no top-k/top-p, temperature 1 unless `temperature` is given, under the saved generation
   config's rules: never the unknown word, no repeated n-gram if it sets one), in eval mode so no dropout changes the
   policy;
2. reward every sample with its CIDEr-D against the image's training references (`CiderD`, document frequencies of
   the whole training set, computed once; only local samples are needed, so every process scores its own), plus
   `bleu_weight` times its sentence BLEU-4 (`SentenceBleu`; 0 by default, as in Rennie et al.);
3. subtract a baseline: the CIDEr-D of the greedy caption (`greedy`, Rennie et al.) or the mean reward of the image's
   other samples (`mean`, ruotianluo's "new self-critical");
4. a teacher-forced pass over the sampled sequences gives their differentiable log-probabilities, also in eval mode:
   they are then exactly the log-probabilities of the policy that drew the samples (with dropout they would be another
   policy's; on tiny data that mismatch made CIDEr fall); the loss is `-sum(advantage * log p(token)) / tokens`.

Batches come from the same (image, caption) sampler as cross-entropy training, so step counts, the learning-rate
schedule, checkpoints and exact resume are the same in both stages; the pair's caption is not used, only its image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from transformers import LogitsProcessorList, NoRepeatNGramLogitsProcessor, SuppressTokensLogitsProcessor

from show_attend_tell.metrics.bleu import SentenceBleu
from show_attend_tell.metrics.cider import CiderD

from .validation import encoder_inputs

BASELINES = ("greedy", "mean")


def reference_token_ids(tokenizer, captions: Sequence[Sequence[str]]) -> list[list[list[int]]]:
    """Every image's reference captions as word ids (no special tokens), the units the rewards compare."""
    return [tokenizer(list(image), add_special_tokens=False)["input_ids"] for image in captions]


def generated_tokens(sequences: torch.Tensor, eos_token_id: int) -> tuple[torch.Tensor, list[list[int]]]:
    """For `generate()` output `(rows, 1 + steps)` (start token first): the mask of the steps that count `(rows,
    steps)`, every token up to and including the first `eos`, and each row's words before that `eos`."""
    targets = sequences[:, 1:]
    is_eos = targets == eos_token_id
    mask = (is_eos.cumsum(dim=1) - is_eos.long()) == 0  # not yet past the first eos
    words = [row[keep & ~end].tolist() for row, keep, end in zip(targets.cpu(), mask.cpu(), is_eos.cpu(), strict=True)]
    return mask, words


def policy_gradient_loss(token_log_probs: torch.Tensor, mask: torch.Tensor, advantages: torch.Tensor) -> torch.Tensor:
    """REINFORCE with a baseline: `-sum(advantage_row * log p(token))` over the counted tokens, divided by their
    number (ruotianluo's normalisation). `token_log_probs`, `mask`: `(rows, steps)`; `advantages`: `(rows,)`."""
    counted = torch.where(mask, token_log_probs, torch.zeros_like(token_log_probs))  # a banned pad may be -inf
    weighted = counted * advantages.unsqueeze(1).to(token_log_probs.dtype)
    return -weighted.sum() / mask.sum().clamp(min=1)


def banned_tokens(generation_config, sequences: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The tokens `generate()` could not draw after each prefix of `sequences`: `(rows, steps, vocab)`, `-inf` where
    the generation config's `suppress_tokens` (the unknown word) or `no_repeat_ngram_size` rule bans a token, else 0.
    Built by transformers' own logits processors, applied to every prefix as `generate()` applies them."""
    processors = LogitsProcessorList()
    if generation_config.suppress_tokens:
        processors.append(SuppressTokensLogitsProcessor(generation_config.suppress_tokens, device=sequences.device))
    if generation_config.no_repeat_ngram_size:
        processors.append(NoRepeatNGramLogitsProcessor(generation_config.no_repeat_ngram_size))
    rows, steps = sequences.shape[0], sequences.shape[1] - 1
    if not processors:
        return torch.zeros(rows, steps, vocab_size, device=sequences.device)
    zeros = torch.zeros(rows, vocab_size, device=sequences.device)
    return torch.stack([processors(sequences[:, : step + 1], zeros) for step in range(steps)], dim=1)


def sequence_log_probs(model, inputs: dict, sequences: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """Teacher-forced log-probabilities `(rows, steps)` of the tokens of `sequences` (rows grouped by image, as
    `generate()` returns them), differentiable w.r.t. the model. They are those of the distribution `generate()`
    samples from at `temperature`: the tokens the saved decoding rules ban (`banned_tokens`) are left out and the
    rest renormalised. A step past the end of a row may be `-inf`; `policy_gradient_loss` does not count it."""
    logits = model(**inputs, decoder_input_ids=sequences[:, :-1], use_cache=False).logits.float() / temperature
    generation_config = getattr(model, "module", model).generation_config
    logits = logits + banned_tokens(generation_config, sequences, logits.shape[-1])
    return F.log_softmax(logits, dim=-1).gather(-1, sequences[:, 1:].unsqueeze(-1)).squeeze(-1)


@dataclass
class ScstStats:
    """Running sums of a training stage's logged metrics, reported as means per batch under `prefix` (SCST: mean
    sample reward, mean baseline, mean sample length in words; hard attention: its reward, baseline and entropy)."""

    prefix: str = "scst_"
    sums: dict[str, float] = field(default_factory=dict)
    batches: int = 0

    def add(self, values: dict[str, float]) -> None:
        for name, value in values.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.batches += 1

    def means(self) -> dict[str, float]:
        return {f"{self.prefix}{name}": value / max(self.batches, 1) for name, value in self.sums.items()}


class SelfCriticalLoss:
    """The SCST loss of a training batch. `references`: every training image's reference captions (strings), in
    data set order, the order of the batches' `image_index`."""

    def __init__(
        self,
        processor,
        references: Sequence[Sequence[str]],
        samples: int,
        baseline: str,
        max_new_tokens: int,
        bleu_weight: float = 0.0,
        temperature: float = 1.0,
    ):
        if baseline not in BASELINES:
            raise ValueError(f"baseline: expected one of {BASELINES}, got {baseline!r}")
        if baseline == "mean" and samples < 2:
            raise ValueError(f"samples: the 'mean' baseline needs at least 2 samples per image, got {samples}")
        if not bleu_weight >= 0:
            raise ValueError(f"bleu_weight: expected a number >= 0, got {bleu_weight}")
        reference_ids = reference_token_ids(processor.tokenizer, references)
        self.cider = CiderD(reference_ids)
        self.bleu = SentenceBleu(reference_ids) if bleu_weight else None
        self.bleu_weight = bleu_weight
        self.samples = samples
        self.baseline = baseline
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature

    @torch.no_grad()
    def _decode(self, model, inputs: dict, sample: bool) -> torch.Tensor:
        """Samples (`sample=True`, `self.samples` rows per image) or greedy captions, decoded in eval mode by the
        model's own `generate()`; returned as an ordinary tensor usable in the teacher-forced pass."""
        unwrapped = getattr(model, "module", model)
        was_training = unwrapped.training
        unwrapped.eval()
        try:
            options = {"do_sample": True, "num_return_sequences": self.samples, "top_k": 0, "top_p": 1.0}
            sequences = unwrapped.generate(
                **inputs,
                num_beams=1,
                max_new_tokens=self.max_new_tokens,
                temperature=self.temperature if sample else 1.0,
                **(options if sample else {"do_sample": False}),
            )
        finally:
            unwrapped.train(was_training)
        return sequences.clone()  # generate() runs in inference mode; autograd needs a normal tensor

    def _baselines(self, model, inputs: dict, rewards: np.ndarray, image_indices: np.ndarray) -> np.ndarray:
        """The baseline of every sample: its image's greedy-caption reward, or the mean of its image's other
        samples' rewards."""
        if self.baseline == "mean":
            per_image = rewards.reshape(-1, self.samples)
            others = (per_image.sum(axis=1, keepdims=True) - per_image) / (self.samples - 1)
            return others.reshape(-1)
        _, greedy_words = generated_tokens(self._decode(model, inputs, sample=False), model_eos(model))
        return np.repeat(self.rewards(greedy_words, image_indices), self.samples)

    def rewards(self, words: Sequence[Sequence[int]], image_indices: np.ndarray) -> np.ndarray:
        """CIDEr-D (plus `bleu_weight` x BLEU-4) of each caption's word ids against its image's references."""
        rewards = self.cider.score(words, image_indices)
        if self.bleu is not None:
            rewards = rewards + self.bleu_weight * self.bleu.score(words, image_indices)
        return rewards

    def __call__(self, model, batch: dict[str, torch.Tensor], frozen_encoder: bool) -> tuple[torch.Tensor, dict]:
        """`(loss, metrics)` of one batch; `metrics`: mean reward, baseline and sample length (floats)."""
        inputs = encoder_inputs(model, batch, frozen_encoder)
        image_indices = batch["image_index"].cpu().numpy()
        sequences = self._decode(model, inputs, sample=True)  # (images * samples, 1 + steps)
        mask, words = generated_tokens(sequences, model_eos(model))
        rewards = self.rewards(words, np.repeat(image_indices, self.samples))
        baselines = self._baselines(model, inputs, rewards, image_indices)
        advantages = torch.as_tensor(rewards - baselines, device=sequences.device)
        unwrapped = getattr(model, "module", model)
        was_training = unwrapped.training
        unwrapped.eval()  # the sampling policy's own log-probabilities (no dropout), see the module docstring
        try:
            log_probs = sequence_log_probs(model, inputs, sequences, self.temperature)
            loss = policy_gradient_loss(log_probs, mask, advantages)
        finally:
            unwrapped.train(was_training)
        metrics = {
            "reward": float(rewards.mean()),
            "baseline": float(baselines.mean()),
            "sample_length": float(np.mean([len(row) for row in words])),
        }
        return loss, metrics


def model_eos(model) -> int:
    return getattr(model, "module", model).config.eos_token_id


__all__ = [
    "BASELINES",
    "ScstStats",
    "SelfCriticalLoss",
    "banned_tokens",
    "generated_tokens",
    "policy_gradient_loss",
    "reference_token_ids",
    "sequence_log_probs",
]
