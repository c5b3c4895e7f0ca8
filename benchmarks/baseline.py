"""The classic tutorial-style Show-Attend-Tell algorithms, written plainly, on the weights of our model.

This is what users usually compare a captioner with: one image at a time, beam search with shrinking beams and
Python bookkeeping, and the attention's encoder-side projection `W_a a_i` recomputed at every step (for every beam),
and a training step that loops over time steps on a length-sorted batch that shrinks as captions end.

Every function reads the modules of a `ShowAttendTellForConditionalGeneration` (attention, LSTM cell, embeddings,
initial state and deep output layers), so its outputs are comparable with the model's fast paths: greedy captions
are identical, beam captions agree on most images, and the training loss and gradients match.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from show_attend_tell import ShowAttendTellForConditionalGeneration


class TutorialDecoder:
    """The tutorial's decoder step, with our model's weights (no module of its own, nothing is copied)."""

    def __init__(self, model: ShowAttendTellForConditionalGeneration):
        self.model = model
        self.config = model.config
        self.encoder_att = model.encoder.region_projection
        self.decoder_att = model.attention.hidden_projection
        self.full_att = model.attention.score
        self.f_beta = model.attention.gate
        self.embedding = model.embed_tokens
        self.decode_step = model.lstm
        self.init_h = model.init_hidden
        self.init_c = model.init_cell

    def init_hidden_state(self, encoder_out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean_encoder_out = encoder_out.mean(dim=1)
        return torch.tanh(self.init_h(mean_encoder_out)), torch.tanh(self.init_c(mean_encoder_out))

    def attend(self, encoder_out: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        att1 = self.encoder_att(encoder_out)  # (k, num_regions, attention_dim), recomputed at every step
        att2 = self.decoder_att(h)  # (k, attention_dim)
        att = self.full_att(torch.tanh(att1 + att2.unsqueeze(1))).squeeze(2)  # (k, num_regions)
        alpha = F.softmax(att, dim=1)
        attention_weighted_encoding = (encoder_out * alpha.unsqueeze(2)).sum(dim=1)  # (k, encoder_dim)
        gate = torch.sigmoid(self.f_beta(h))
        return gate * attention_weighted_encoding, alpha

    def step(
        self, encoder_out: torch.Tensor, prev_words: torch.Tensor, h: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """One decoding step: (scores over the vocabulary, h, c, alpha)."""
        embeddings = self.embedding(prev_words)  # (k, embed_dim)
        context, alpha = self.attend(encoder_out, h)
        h, c = self.decode_step(torch.cat([embeddings, context], dim=1), (h, c))
        return self.model.output_logits(embeddings, h, context), h, c, alpha  # the same output layer


@torch.no_grad()
def baseline_greedy(
    model: ShowAttendTellForConditionalGeneration, encoder_out: torch.Tensor, max_new_tokens: int
) -> list[list[int]]:
    """Greedy captions, one image at a time. `encoder_out`: (batch, num_regions, encoder_dim) region features.

    Returns token ids per image: `bos`, the words, and `eos` when the caption ended before `max_new_tokens`.
    """
    decoder = TutorialDecoder(model)
    bos, eos = model.config.decoder_start_token_id, model.config.eos_token_id
    captions = []
    for image in encoder_out:
        image = image.unsqueeze(0)  # (1, num_regions, encoder_dim)
        h, c = decoder.init_hidden_state(image)
        words = [bos]
        for _ in range(max_new_tokens):
            scores, h, c, _ = decoder.step(image, torch.tensor([words[-1]]), h, c)
            words.append(int(scores.argmax(dim=1)))
            if words[-1] == eos:
                break
        captions.append(words)
    return captions


@torch.no_grad()
def baseline_beam_search(
    model: ShowAttendTellForConditionalGeneration, encoder_out: torch.Tensor, beam_size: int, max_new_tokens: int
) -> list[list[int]]:
    """The tutorial's beam search, one image at a time, with shrinking beams.

    Every step keeps the `k` best continuations of all live beams; those ending in `eos` leave the beam and `k` shrinks,
    until no beam is left or `max_new_tokens` is reached. The caption is the finished hypothesis with the highest sum
    of log-probabilities (no length penalty); when none finished, the best live one.
    """
    decoder = TutorialDecoder(model)
    bos, eos = model.config.decoder_start_token_id, model.config.eos_token_id
    captions = []
    for image in encoder_out:
        k = beam_size
        image_out = image.unsqueeze(0).expand(k, *image.shape)  # (k, num_regions, encoder_dim)
        k_prev_words = torch.full((k,), bos, dtype=torch.long)
        seqs = k_prev_words.unsqueeze(1)  # (k, 1)
        top_k_scores = torch.zeros(k, 1)
        complete_seqs, complete_seqs_scores = [], []
        h, c = decoder.init_hidden_state(image_out)
        for step in range(1, max_new_tokens + 1):
            scores, h, c, _ = decoder.step(image_out, k_prev_words, h, c)
            scores = top_k_scores.expand_as(scores) + F.log_softmax(scores, dim=1)  # (k, vocab_size)
            if step == 1:  # all beams are the same: take the k best words of the first
                top_k_scores, top_k_words = scores[0].topk(k)
            else:
                top_k_scores, top_k_words = scores.view(-1).topk(k)
            prev_word_inds = torch.div(top_k_words, scores.shape[1], rounding_mode="floor")
            next_word_inds = top_k_words % scores.shape[1]
            seqs = torch.cat([seqs[prev_word_inds], next_word_inds.unsqueeze(1)], dim=1)
            incomplete = [ind for ind, word in enumerate(next_word_inds.tolist()) if word != eos]
            complete = [ind for ind in range(len(next_word_inds)) if ind not in incomplete]
            if complete:
                complete_seqs.extend(seqs[complete].tolist())
                complete_seqs_scores.extend(top_k_scores[complete].tolist())
            k -= len(complete)
            if k == 0:
                break
            seqs = seqs[incomplete]
            h = h[prev_word_inds[incomplete]]
            c = c[prev_word_inds[incomplete]]
            image_out = image_out[prev_word_inds[incomplete]]
            top_k_scores = top_k_scores[incomplete].unsqueeze(1)
            k_prev_words = next_word_inds[incomplete]
        if not complete_seqs:  # nothing finished within max_new_tokens: the best live hypothesis
            complete_seqs, complete_seqs_scores = seqs.tolist(), top_k_scores.flatten().tolist()
        best = max(range(len(complete_seqs_scores)), key=complete_seqs_scores.__getitem__)
        captions.append(complete_seqs[best])
    return captions


def baseline_training_loss(
    model: ShowAttendTellForConditionalGeneration, encoder_out: torch.Tensor, labels: torch.LongTensor
) -> torch.Tensor:
    """The tutorial's teacher-forced loss: a per-timestep loop over a length-sorted, shrinking batch.

    `labels` (batch, steps) are the model's labels (words then `eos`, padding -100). The loss is the same quantity as
    `model(encoder_outputs=..., labels=labels).loss`: cross-entropy over real tokens plus the doubly stochastic term.
    """
    decoder = TutorialDecoder(model)
    config = model.config
    decode_lengths, sort_ind = (labels != -100).sum(dim=1).sort(descending=True)
    encoder_out = encoder_out[sort_ind]
    targets = labels[sort_ind]
    decoder_input_ids = model._shift_right(targets)
    embeddings = decoder.embedding(decoder_input_ids)  # (batch, steps, embed_dim)
    h, c = decoder.init_hidden_state(encoder_out)
    batch_size, max_length = len(decode_lengths), int(decode_lengths[0])
    predictions = torch.zeros(batch_size, max_length, config.vocab_size)
    alphas = torch.zeros(batch_size, max_length, encoder_out.shape[1])
    lengths = decode_lengths.tolist()
    for t in range(max_length):
        batch_size_t = sum(length > t for length in lengths)
        context, alpha = decoder.attend(encoder_out[:batch_size_t], h[:batch_size_t])
        h, c = decoder.decode_step(
            torch.cat([embeddings[:batch_size_t, t], context], dim=1), (h[:batch_size_t], c[:batch_size_t])
        )
        predictions[:batch_size_t, t] = decoder.model.output_logits(embeddings[:batch_size_t, t], h, context)
        alphas[:batch_size_t, t] = alpha
    scores = pack_padded_sequence(predictions, lengths, batch_first=True).data
    packed_targets = pack_padded_sequence(targets[:, :max_length], lengths, batch_first=True).data
    loss = F.cross_entropy(scores, packed_targets, label_smoothing=config.label_smoothing)
    return loss + config.alpha_c * ((1.0 - alphas.sum(dim=1)) ** 2).mean()
