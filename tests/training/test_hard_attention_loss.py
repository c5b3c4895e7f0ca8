"""The hard-attention training loss (training/hard_attention.py): its Monte Carlo gradient is the gradient of the
paper's lower bound, computed exactly by enumerating every location sequence; a tiny hard model learns with it."""

from __future__ import annotations

import itertools
import types

import pytest
import torch

from show_attend_tell import ShowAttendTellEncoderOutput
from tests.conftest import make_tiny
from training.hard_attention import HardAttentionLoss, caption_log_likelihood, hard_attention_terms

CAPTIONS = ["a red circle", "a blue square above a green triangle", "two circles", "a triangle left of a square"]
# Parameters that get gradient only through the locations (REINFORCE) when every caption samples its locations.
ATTENTION_PARAMETERS = (
    "attention.score.weight",
    "attention.hidden_projection.weight",
    "encoder.region_projection.weight",
)


def _hard_model():
    model, processor = make_tiny(
        CAPTIONS, seed=1, attention_type="hard", hard_expected_context_prob=0.0, dropout=0.0, alpha_c=0.0
    )
    return model.train(), processor


def _gradients(model, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad()
    loss.backward(retain_graph=True)
    return {name: param.grad.clone() for name, param in model.named_parameters() if name in ATTENTION_PARAMETERS}


def _relative_error(estimate: dict, exact: dict) -> float:
    difference = torch.cat([(estimate[name] - exact[name]).flatten() for name in exact])
    return float(difference.norm() / torch.cat([value.flatten() for value in exact.values()]).norm())


def test_reinforce_gradient_matches_the_exact_gradient_of_the_lower_bound(monkeypatch):
    model, processor = _hard_model()
    torch.manual_seed(0)
    regions = 3.0 * torch.randn(1, model.config.num_regions, model.config.encoder_dim)
    labels = processor.encode_captions(["circle"])  # "circle <eos>": 2 steps
    steps = labels.shape[1]
    assert steps == 2

    # Exact: L_s = sum_s p(s | a) log p(y | s, a) over all 4^2 location sequences, each decoded with its locations
    # forced; p(s | a) = prod_t alpha_t[s_t] is differentiable (alpha_2 depends on s_1 through the LSTM).
    bound, expected_reward = 0.0, 0.0
    for sequence in itertools.product(range(model.config.num_regions), repeat=steps):
        forced = iter(sequence)
        monkeypatch.setattr(
            model.attention, "draw_locations", lambda alpha, forced=forced: torch.tensor([next(forced)])
        )
        outputs = model(encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=regions), labels=labels)
        assert outputs.attention_locations.tolist() == [list(sequence)]
        log_p_s = outputs.attentions[0, torch.arange(steps), list(sequence)].log().sum()
        log_p_y = caption_log_likelihood(outputs.logits, labels)[0]
        bound = bound + log_p_s.exp() * log_p_y
        expected_reward += float((log_p_s.exp() * log_p_y).detach())
    monkeypatch.undo()
    # The training loss is normalised per token: its expected gradient is -grad(L_s) / steps.
    exact = _gradients(model, -bound / steps)
    assert all(value.norm() > 0 for value in exact.values())

    # Monte Carlo: 10000 independent samples of the same caption in one batch, constant baseline.
    rows = 10000
    batch_regions = regions.expand(rows, -1, -1).contiguous()
    torch.manual_seed(1)
    outputs = model(
        encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=batch_regions), labels=labels.repeat(rows, 1)
    )
    terms = hard_attention_terms(
        outputs, labels.repeat(rows, 1), expected_reward, reinforce_weight=1.0, entropy_weight=0.0
    )
    estimate = _gradients(model, terms.loss)
    # Tolerance: 10% of the gradient's norm (the estimate's error with this seed is well below; without the REINFORCE
    # term these parameters get no gradient at all, an error of 100%).
    error = _relative_error(estimate, exact)
    print(f"relative error of the REINFORCE estimate: {error:.4f}")
    assert error < 0.1
    assert float(terms.rewards.mean()) == pytest.approx(expected_reward, abs=0.05)
    without_reinforce = hard_attention_terms(outputs, labels.repeat(rows, 1), expected_reward, 0.0, 0.0)
    assert _relative_error(_gradients(model, without_reinforce.loss), exact) > 0.99


class _OneProcess:
    """What HardAttentionLoss needs of an Accelerator, in one process."""

    @staticmethod
    def reduce(tensor, reduction="sum"):
        return tensor


def test_a_tiny_hard_model_overfits_a_few_captions():
    model, processor = make_tiny(CAPTIONS, seed=0, attention_type="hard", dropout=0.0, alpha_c=0.0)
    torch.manual_seed(0)
    features = torch.randn(len(CAPTIONS), model.config.num_regions, model.config.encoder_dim)
    batch = {"features": features, "labels": processor.encode_captions(CAPTIONS)}
    loss_fn = HardAttentionLoss(_OneProcess())
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    model.train()
    for _ in range(250):
        loss, metrics = loss_fn(model, batch, frozen_encoder=True)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss_fn.baseline is not None and loss_fn.baseline > -1.0  # the sampled captions' log-likelihood rose
    model.eval()
    encoder_outputs = ShowAttendTellEncoderOutput(last_hidden_state=features)
    for num_beams in (1, 3):
        generated = model.generate(encoder_outputs=encoder_outputs, num_beams=num_beams, max_new_tokens=12)
        assert processor.batch_decode(generated) == CAPTIONS


def test_the_baseline_is_a_moving_average_of_the_reward_and_round_trips():
    loss_fn = HardAttentionLoss(_OneProcess(), decay=0.9)
    model, processor = _hard_model()
    labels = processor.encode_captions(CAPTIONS[:2])
    batch = {"features": torch.randn(2, model.config.num_regions, model.config.encoder_dim), "labels": labels}
    _, first = loss_fn(model, batch, frozen_encoder=True)
    assert loss_fn.baseline == pytest.approx(first["reward"])  # the first batch starts the average at its reward
    _, second = loss_fn(model, batch, frozen_encoder=True)
    assert second["baseline"] == pytest.approx(first["reward"])
    assert loss_fn.baseline == pytest.approx(0.9 * first["reward"] + 0.1 * second["reward"])
    restored = HardAttentionLoss(types.SimpleNamespace())
    restored.load_state_dict(loss_fn.state_dict())
    assert restored.baseline == loss_fn.baseline
