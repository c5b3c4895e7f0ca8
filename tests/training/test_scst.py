"""Self-critical sequence training: the policy-gradient step, a short run that raises training-set CIDEr-D from a saved
captioner whose output folder then loads with remote code, the cross-entropy -> SCST switch, and option errors."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from itertools import pairwise

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from show_attend_tell import (
    ShowAttendTellEncoderOutput,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
)
from show_attend_tell.metrics.bleu import SentenceBleu
from show_attend_tell.metrics.cider import CiderD
from tests.conftest import COCO_MINI, make_tiny, read_metadata
from tests.training.train_utils import TINY_ARGS, read_json, read_weights, run_training
from training.args import parse_args
from training.scst import (
    SelfCriticalLoss,
    generated_tokens,
    policy_gradient_loss,
    reference_token_ids,
    sequence_log_probs,
)

TRAIN_IMAGES = 8


def test_generated_tokens_count_up_to_the_first_eos():
    eos = 2
    sequences = torch.tensor([[1, 5, 6, 2, 0, 0], [1, 2, 0, 0, 0, 0], [1, 7, 8, 9, 5, 6]])
    mask, words = generated_tokens(sequences, eos)
    assert mask.tolist() == [
        [True, True, True, False, False],
        [True, False, False, False, False],
        [True, True, True, True, True],
    ]
    assert words == [[5, 6], [], [7, 8, 9, 5, 6]]


@pytest.mark.parametrize("advantage", [1.0, -1.0])
def test_a_sample_that_beats_the_baseline_gains_probability(advantage):
    model, _ = make_tiny(["a dog runs on the grass", "a cat sits on a mat"], dropout=0.0)
    model.train()
    features = torch.randn(1, 4, model.config.encoder_dim)
    inputs = {"encoder_outputs": ShowAttendTellEncoderOutput(last_hidden_state=features)}
    sequence = torch.tensor([[model.config.decoder_start_token_id, 4, 5, 6, model.config.eos_token_id]])
    mask = torch.ones(1, 4, dtype=torch.bool)

    log_probs = sequence_log_probs(model, inputs, sequence)
    loss = policy_gradient_loss(log_probs, mask, torch.tensor([advantage]))
    # Scale: minus the advantage times the mean log-probability of the sample's tokens.
    assert loss.item() == pytest.approx(-advantage * log_probs.sum().item() / 4, rel=1e-6)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        change = sequence_log_probs(model, inputs, sequence).sum() - log_probs.detach().sum()
    assert change * advantage > 1e-3, f"log-probability moved by {change:.4f} for advantage {advantage}"


def sampled_log_probs(model, inputs: dict, temperature: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`generate(do_sample=True)`'s sequences and the log-probability of each drawn token under the very scores it was
    drawn from, `(rows, steps)`."""
    torch.manual_seed(seed)
    out = model.generate(
        **inputs, do_sample=True, top_k=0, top_p=1.0, temperature=temperature, num_beams=1, max_new_tokens=8,
        output_scores=True, return_dict_in_generate=True,
    )  # fmt: skip
    sequences = out.sequences.clone()
    sampled_from = torch.stack(
        [F.log_softmax(scores, dim=-1).gather(-1, sequences[:, step + 1 : step + 2]).squeeze(-1)
         for step, scores in enumerate(out.scores)], dim=1,
    )  # fmt: skip
    return sequences, sampled_from


@pytest.mark.parametrize(("temperature", "no_repeat_ngram_size"), [(1.0, 0), (0.5, 0), (1.0, 2), (0.5, 2)])
def test_log_probabilities_are_those_of_the_distribution_generate_samples_from(temperature, no_repeat_ngram_size):
    """A trained captioner's generation config suppresses `<unk>` and may forbid repeated n-grams: `generate(do_sample=
    True)` never draws a banned token, and the teacher-forced log-probabilities of the loss are the log-softmax of the
    very scores the samples were drawn from, at the sampling temperature."""
    model, processor = make_tiny(["a dog runs on the grass", "a cat sits on a mat"], dropout=0.0)
    unk, eos = processor.tokenizer.unk_token_id, model.config.eos_token_id
    word = processor.tokenizer.convert_tokens_to_ids("a")
    with torch.no_grad():
        model.lm_head.bias[unk] += 3.0  # most of the probability mass, unless it is suppressed
        model.lm_head.bias[word] += 2.0  # "a a a ...": repeated bigrams, unless the n-gram rule forbids them
        model.lm_head.bias[eos] -= 3.0  # long samples
    model.generation_config.suppress_tokens = [unk]
    model.generation_config.no_repeat_ngram_size = no_repeat_ngram_size
    features = torch.randn(4, 4, model.config.encoder_dim)
    inputs = {"encoder_outputs": ShowAttendTellEncoderOutput(last_hidden_state=features)}
    sequences, sampled_from = sampled_log_probs(model, inputs, temperature, seed=0)
    assert not (sequences == unk).any()
    mask, words = generated_tokens(sequences, eos)
    torch.testing.assert_close(sequence_log_probs(model, inputs, sequences, temperature)[mask], sampled_from[mask])
    if no_repeat_ngram_size:
        assert all(len(set(pairwise(row))) == len(row) - 1 for row in words), words
        model.generation_config.no_repeat_ngram_size = 0  # the rule is what makes them equal: without it, they differ
        unconstrained = sequence_log_probs(model, inputs, sequences, temperature)[mask]
        assert (unconstrained - sampled_from[mask]).abs().max() > 1e-2


def test_the_loss_ignores_banned_steps_past_the_end_of_a_sample():
    """Past a sample's end its padding repeats, which the n-gram rule bans (`-inf`): the loss and its gradient stay
    finite."""
    model, _ = make_tiny(["a dog runs on the grass", "a cat sits on a mat"], dropout=0.0)
    model.generation_config.no_repeat_ngram_size = 2
    eos, pad = model.config.eos_token_id, model.config.pad_token_id
    sequence = torch.tensor([[model.config.decoder_start_token_id, 4, eos, pad, pad, pad, pad]])
    inputs = {
        "encoder_outputs": ShowAttendTellEncoderOutput(last_hidden_state=torch.randn(1, 4, model.config.encoder_dim))
    }
    log_probs = sequence_log_probs(model, inputs, sequence)
    assert torch.isinf(log_probs[0, -1]), "the padding's repeated bigram is banned"
    mask, _ = generated_tokens(sequence, eos)
    loss = policy_gradient_loss(log_probs, mask, torch.tensor([1.0]))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def train_references() -> list[list[str]]:
    return [row["captions"] for row in read_metadata(COCO_MINI / "train")[:TRAIN_IMAGES]]


def training_set_cider(model, processor) -> float:
    """Mean CIDEr-D of greedy captions of the training images (frequencies from their references)."""
    rows = read_metadata(COCO_MINI / "train")[:TRAIN_IMAGES]
    pixel_values = processor(images=[row["path"] for row in rows])["pixel_values"]
    sequences = model.eval().generate(pixel_values, num_beams=1, max_new_tokens=12)
    _, words = generated_tokens(sequences, model.config.eos_token_id)
    cider = CiderD(reference_token_ids(processor.tokenizer, train_references()))
    return float(cider.score(words, range(TRAIN_IMAGES)).mean())


@pytest.mark.slow
def test_scst_from_a_saved_captioner_raises_training_cider_and_saves_a_remote_code_folder(tmp_path):
    common = [
        *TINY_ARGS,
        "--dataset_name", COCO_MINI,
        "--max_train_samples", TRAIN_IMAGES,
        "--no_validation",
        "--num_warmup_steps", 0,
        "--lr_scheduler_type", "constant",
        "--feature_cache", tmp_path / "cache",
    ]  # fmt: skip
    saved = tmp_path / "cross_entropy"
    run_training(*common, "--num_train_epochs", 30, "--learning_rate", 1e-2, "--output_dir", saved)
    processor = ShowAttendTellProcessor.from_pretrained(saved)
    before = training_set_cider(ShowAttendTellForConditionalGeneration.from_pretrained(saved), processor)

    output_dir = tmp_path / "scst"
    run_training(
        *common, "--model_name_or_path", saved, "--scst", "--num_train_epochs", 8, "--learning_rate", 3e-4,
        "--output_dir", output_dir,
    )  # fmt: skip

    after = training_set_cider(ShowAttendTellForConditionalGeneration.from_pretrained(output_dir), processor)
    assert after > 1.1 * before, f"training-set CIDEr-D {before:.3f} -> {after:.3f}"
    logs = read_json(output_dir / "trainer_state.json")["log_history"]
    assert len(logs) == 40 and all(
        {"scst_reward", "scst_baseline", "scst_sample_length"} <= set(entry) for entry in logs
    )
    # Same vocabulary and architecture as the saved captioner.
    assert read_json(output_dir / "tokenizer.json") == read_json(saved / "tokenizer.json")
    assert read_json(output_dir / "training_args.json")["decoder_dim"] == 32

    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["show_attend_tell"] = None  # only the folder's own code may be used
        from transformers import AutoModel, AutoProcessor
        model = AutoModel.from_pretrained({str(output_dir)!r}, trust_remote_code=True).eval()
        processor = AutoProcessor.from_pretrained({str(output_dir)!r}, trust_remote_code=True)
        ids = model.generate(processor(images={str(read_metadata(COCO_MINI / "train")[0]["path"])!r})["pixel_values"])
        print("CAPTION", repr(processor.batch_decode(ids)[0]))
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "CAPTION" in result.stdout


def test_scst_after_cross_entropy_epochs_in_one_run_with_the_mean_baseline(tmp_path):
    run_training(
        *TINY_ARGS,
        "--dataset_name", COCO_MINI,
        "--max_train_samples", 4,
        "--no_validation",
        "--num_train_epochs", 2,
        "--scst_after", 1,
        "--scst_baseline", "mean",
        "--scst_samples", 3,
        "--output_dir", tmp_path / "run",
        "--feature_cache", tmp_path / "cache",
    )  # fmt: skip
    logs = read_json(tmp_path / "run" / "trainer_state.json")["log_history"]
    assert [entry["epoch"] for entry in logs] == [0, 0, 0, 1, 1, 1]
    assert ["scst_reward" in entry for entry in logs] == [False] * 3 + [True] * 3
    assert all(0 < entry["scst_sample_length"] <= 12 for entry in logs[3:])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scst"], "--scst needs --model_name_or_path"),
        (["--scst_after", "1", "--scst_baseline", "mean", "--scst_samples", "1"], "--scst_samples must be at least 2"),
        (["--scst_after", "1", "--streaming", "--max_train_steps", "5"], "not available with --streaming"),
        (["--scst_after", "1", "--scst_bleu_weight", "-0.5"], "--scst_bleu_weight must be a number >= 0, got -0.5"),
        (["--scst_after", "1", "--scst_bleu_weight", "nan"], "--scst_bleu_weight must be a number >= 0, got nan"),
        (["--scst_after", "1", "--scst_temperature", "0"], "--scst_temperature must be a number > 0, got 0.0"),
    ],
)
def test_conflicting_scst_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit):
        parse_args(["--output_dir", "out", *argv])
    assert message in capsys.readouterr().err


def test_architecture_options_that_contradict_the_saved_model_are_refused(tiny_model_dir, tmp_path):
    with pytest.raises(SystemExit, match=r"--decoder_dim 64 \(the saved model has 48\)"):
        run_training(
            "--model_name_or_path", tiny_model_dir, "--decoder_dim", "64", "--dataset_name", COCO_MINI,
            "--output_dir", tmp_path / "run",
        )  # fmt: skip


def test_reward_adds_the_weighted_sentence_bleu():
    references = train_references()[:3]
    _, processor = make_tiny([caption for image in references for caption in image])
    cider_only = SelfCriticalLoss(processor, references, samples=2, baseline="mean", max_new_tokens=8)
    with_bleu = SelfCriticalLoss(processor, references, 2, "mean", 8, bleu_weight=0.5)
    reference_ids = reference_token_ids(processor.tokenizer, references)
    words = [reference_ids[0][0], reference_ids[1][0][:3], reference_ids[0][1]]
    indices = np.array([0, 1, 2])
    bleu = SentenceBleu(reference_ids).score(words, indices)
    assert bleu[0] == pytest.approx(1.0) and 0 < bleu[1] < 1  # a reference itself; a prefix of one
    np.testing.assert_allclose(with_bleu.rewards(words, indices), cider_only.rewards(words, indices) + 0.5 * bleu)


def test_resumed_scst_run_matches_uninterrupted_run(tmp_path):
    # 12 scenes x 4 captions = 48 pairs = 3 optimizer steps per epoch (2 batches of 8 accumulated); epoch 0 is
    # cross-entropy, epoch 1 self-critical. Resuming at step 4 (inside the SCST epoch) must restore the sampling RNG.
    common = [
        *TINY_ARGS,
        "--max_train_samples", 12,
        "--gradient_accumulation_steps", 2,
        "--max_train_steps", 6,
        "--checkpointing_steps", 2,
        "--checkpoints_total_limit", 10,
        "--no_validation",
        "--feature_cache", tmp_path / "cache",
        "--scst_after", 1,
        "--scst_samples", 2,
        "--scst_bleu_weight", 0.5,
        "--scst_max_new_tokens", 6,
    ]  # fmt: skip
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_training(*common, "--output_dir", full)
    run_training(*common, "--output_dir", resumed, "--resume_from_checkpoint", full / "checkpoints" / "step_4")

    assert sorted(path.name for path in (resumed / "checkpoints").iterdir()) == ["step_6"]
    full_log = read_json(full / "trainer_state.json")["log_history"]
    resumed_log = read_json(resumed / "trainer_state.json")["log_history"]
    assert "scst_reward" in full_log[-1] and "scst_reward" not in full_log[0]  # the stages really switched
    assert resumed_log == full_log
    expected, actual = read_weights(full / "model.safetensors"), read_weights(resumed / "model.safetensors")
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=0, msg=name)
    start = read_weights(full / "checkpoints" / "step_4" / "model.safetensors")
    assert not torch.equal(start["lm_head.weight"], expected["lm_head.weight"])  # the SCST steps changed the model


def test_a_loaded_captioner_is_kept_when_no_epoch_of_the_run_beats_it(tiny_model_dir, tmp_path):
    # A learning rate this large wrecks the model in one epoch: the output folder must keep the loaded weights, which
    # were validated before training (as "epoch -1").
    output_dir = tmp_path / "run"
    run_training(
        "--per_device_train_batch_size", 8,
        "--per_device_eval_batch_size", 8,
        "--num_beams", 1,
        "--max_new_tokens", 8,
        "--model_name_or_path", tiny_model_dir,
        "--dataset_name", COCO_MINI,
        "--max_train_samples", TRAIN_IMAGES,
        "--max_eval_samples", 4,
        "--num_train_epochs", 1,
        "--num_warmup_steps", 0,
        "--learning_rate", 5.0,
        "--metric_for_best_model", "loss",
        "--output_dir", output_dir,
    )  # fmt: skip
    history = read_json(output_dir / "val_metrics.json")["history"]
    assert [entry["epoch"] for entry in history] == [-1, 0]
    assert history[1]["loss"] > history[0]["loss"]
    assert read_json(output_dir / "val_metrics.json")["best_epoch"] == -1
    loaded, saved = read_weights(tiny_model_dir / "model.safetensors"), read_weights(output_dir / "model.safetensors")
    for name in loaded:
        torch.testing.assert_close(saved[name], loaded[name], rtol=0, atol=0, msg=name)
