"""Training loss of stochastic "hard" attention (Xu et al. 2015, section 4.1).

A hard model in train mode (`config.attention_type="hard"`) samples one location per word, `s_t ~ Multinoulli(alpha_t)`,
and uses that region (times the gate `beta`) as the context; for a random half of the captions
(`config.hard_expected_context_prob`) it keeps the expected context instead (the paper's variance-reduction trick).
The model's own loss is then the word cross-entropy given those contexts. The paper maximises the variational lower
bound `L_s = sum_s p(s | a) log p(y | s, a)` <= `log p(y | a)`, whose Monte Carlo gradient (eq. 12) has, besides the
gradient of `log p(y | s~, a)`, a REINFORCE term for the locations and an entropy bonus:

    lambda_r (log p(y | s~, a) - b) d log p(s~ | a) / dW  +  lambda_e d H[s~] / dW

`HardAttentionLoss` adds those two terms to the model's loss, as the surrogate

    loss = model loss - lambda_r * sum_captions (log p(y | s~, a) - b) * sum_t log alpha_t[s~_t] / tokens
                      - lambda_e * mean over words of H[alpha_t]

with the reward `log p(y | s~, a)` (summed over the caption's words, detached) and the normalisation by the batch's
token count that the word cross-entropy uses, so that with `lambda_r = 1` its gradient is exactly the Monte Carlo
estimate of the gradient of `L_s` per token (tests/training/test_hard_attention_loss.py compares it with the exact
gradient computed by enumerating every location sequence). Captions that used the expected context get no REINFORCE
term: their attention receives its gradient directly through the context.

The baseline `b` is the paper's moving average of the reward, `b_k = 0.9 b_(k-1) + 0.1 log p(y | s~_k, a)`, updated
once per batch with the mean reward of the batch's sampled captions (averaged over all processes, so every process uses
the same baseline); the first batch starts it at its own mean. Its state is saved with every checkpoint
(`accelerator.register_for_checkpointing`), so a resumed run continues exactly.

Defaults: `hard_expected_context_prob = 0.5` and the baseline decay 0.9 are the paper's values; the paper gives none for
`lambda_r` and `lambda_e`: `lambda_r = 1` makes the update the unbiased gradient of the bound, and `lambda_e = 0.002`
is the entropy weight of the authors' code (arctic-captions' `alpha_entropy_c`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .validation import encoder_inputs


@dataclass
class HardAttentionTerms:
    """The pieces of the surrogate loss of one batch (tensors; `reward` and `entropy` detached)."""

    loss: torch.Tensor  # model loss + REINFORCE term + entropy bonus
    rewards: torch.Tensor  # (sampled captions,) log p(y | s~, a), summed over each caption's words
    entropy: torch.Tensor  # () mean entropy of alpha over the batch's words


def caption_log_likelihood(logits: torch.Tensor, labels: torch.LongTensor) -> torch.Tensor:
    """`log p(y | s, a)` of every caption `(batch,)`: the log-probabilities of its labels, summed (no smoothing)."""
    valid = labels != -100
    log_probs = F.log_softmax(logits.float(), dim=-1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (log_probs * valid).sum(dim=1)


def hard_attention_terms(
    outputs,
    labels: torch.LongTensor,
    baseline: float,
    reinforce_weight: float,
    entropy_weight: float,
    caption_rewards: torch.Tensor | None = None,
) -> HardAttentionTerms:
    """The surrogate loss of one batch from a hard model's training `outputs` (`attentions`, `attention_locations`,
    `logits`, `loss`) for `labels`, with the reward baseline `baseline` (`caption_rewards`: the captions'
    `caption_log_likelihood`, computed here when not given)."""
    valid = labels != -100  # (batch, steps)
    tokens = valid.sum().clamp(min=1)
    alphas = outputs.attentions.float()  # (batch, steps, num_regions)
    locations = outputs.attention_locations  # (batch, steps), -1: expected context or padding
    loss = outputs.loss
    rewards = alphas.new_zeros(0)
    if locations is not None:
        sampled_steps = locations >= 0
        sampled_rows = sampled_steps.any(dim=1)
        # log p(s~ | a) = sum_t log alpha_t[s~_t] of every caption (0 for captions that used the expected context)
        picked = alphas.gather(-1, locations.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        location_log_prob = (picked.clamp(min=1e-30).log() * sampled_steps).sum(dim=1)  # (batch,)
        if caption_rewards is None:
            caption_rewards = caption_log_likelihood(outputs.logits.detach(), labels)  # (batch,)
        advantages = (caption_rewards - baseline) * sampled_rows
        loss = loss - reinforce_weight * (advantages * location_log_prob).sum() / tokens
        rewards = caption_rewards[sampled_rows]
    step_entropy = -(alphas * alphas.clamp(min=1e-30).log()).sum(dim=-1)  # (batch, steps)
    entropy = (step_entropy * valid).sum() / tokens
    if entropy_weight:
        loss = loss - entropy_weight * entropy
    return HardAttentionTerms(loss=loss, rewards=rewards, entropy=entropy.detach())


class HardAttentionLoss:
    """The training loss of a hard-attention model (see the module docstring), with the moving-average baseline as
    checkpointed state (`state_dict` / `load_state_dict`)."""

    def __init__(self, accelerator, reinforce_weight: float = 1.0, entropy_weight: float = 0.002, decay: float = 0.9):
        self.accelerator = accelerator
        self.reinforce_weight = reinforce_weight
        self.entropy_weight = entropy_weight
        self.decay = decay
        self.baseline: float | None = None  # None until the first batch with sampled captions

    def state_dict(self) -> dict:
        return {"baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        self.baseline = state["baseline"]

    def __call__(self, model, batch: dict, frozen_encoder: bool) -> tuple[torch.Tensor, dict[str, float]]:
        outputs = model(**encoder_inputs(model, batch, frozen_encoder), labels=batch["labels"])
        # The batch's mean reward over every process's sampled captions (the same on all of them).
        local, rewards = outputs.logits.new_zeros(2, dtype=torch.float32), None
        if outputs.attention_locations is not None:
            rewards = caption_log_likelihood(outputs.logits.detach(), batch["labels"])
            sampled = (outputs.attention_locations >= 0).any(dim=1)
            local = torch.stack([rewards[sampled].sum(), sampled.sum().float()])
        total = self.accelerator.reduce(local, reduction="sum")
        mean_reward = float(total[0] / total[1]) if total[1] > 0 else None
        if self.baseline is None:
            self.baseline = mean_reward  # stays None while no caption was sampled
        baseline = self.baseline if self.baseline is not None else 0.0
        terms = hard_attention_terms(
            outputs, batch["labels"], baseline, self.reinforce_weight, self.entropy_weight, caption_rewards=rewards
        )
        if mean_reward is not None:  # b_k = decay * b_(k-1) + (1 - decay) * reward_k
            self.baseline = self.decay * self.baseline + (1.0 - self.decay) * mean_reward
        metrics = {"baseline": baseline, "entropy": float(terms.entropy)}
        if mean_reward is not None:
            metrics["reward"] = mean_reward
        return terms.loss, metrics


__all__ = ["HardAttentionLoss", "HardAttentionTerms", "caption_log_likelihood", "hard_attention_terms"]
