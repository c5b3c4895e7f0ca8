"""PyTorch Show, Attend and Tell (Xu et al. 2015, "Show, Attend and Tell: Neural Image Caption Generation with
Visual Attention").

Read top to bottom:

1. `ShowAttendTellEncoder`: a timm CNN whose feature map becomes `num_regions = grid_height * grid_width` region
   vectors (the grid that the configuration derived from the same backbone, `config.grid_size`), plus the
   attention's encoder-side projection `W_a a_i`, computed once per image.
2. `ShowAttendTellAttention`: additive soft attention `alpha = softmax(w^T tanh(W_a a + W_h h))` with the gate
   `beta = sigmoid(f_beta(h))` (paper section 4.2.1); for hard attention (section 4.1, `config.attention_type`) it
   also draws a location `s ~ Multinoulli(alpha)` whose region is the context, in training.
3. `ShowAttendTellForConditionalGeneration`: the LSTM decoder. `decoder_step` is its one step (previous word, state,
   regions -> logits, attention, new state), which the ONNX export runs as it is. `forward()` prepares the inputs in
   numbered steps and runs one of two paths around the same loop of steps (`_decode`): `_forward_packed` for teacher
   forcing in training (each caption leaves the loop when it ends) and `_forward_steps` for `generate()`, one step
   per call. The LSTM
   state travels between steps as a `ShowAttendTellCache`, which beam search reorders. transformers names that state
   `cache` from release 5.24 on and `past_key_values` before; `CACHE_NAME` (in the configuration file, with every
   other release difference) picks the name, and `forward()` accepts both.

This file imports only its configuration (a saved folder's pipeline travels with its processor), which also holds the
end-of-caption rule (`caption_lengths`) that `generate()`'s attention maps and the pipeline's captions share.

Fast paths (measured in benchmarks/, checked against the plain computation in tests/benchmarks/):
- The region features and their projection stay one copy per image in `generate()`: the `copies` rows of an image
  (its beams, or its returned sequences) share them, instead of `generate()` repeating them per row.
- In training, captions leave the LSTM loop when they end (the rows of a `PackedSequence`), so padding costs nothing.
- The attention's tanh is computed through sigmoid (same values; several times faster on CPU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import timm
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers import GenerationMixin, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_show_attend_tell import CACHE_NAME, ShowAttendTellConfig, caption_lengths

# --------------------------------------------------------------------------------------------------------------------
# Outputs
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class ShowAttendTellEncoderOutput(ModelOutput):
    """
    Args:
        last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_regions, encoder_dim)`):
            The backbone's last feature map, one vector per grid cell, in row-major order.
        projected_regions (`torch.FloatTensor` of shape `(batch_size, num_regions, attention_dim)`, *optional*):
            The attention's encoder-side term `W_a a_i`. Computed once per image and reused at every decoding step
            and by every beam. When `None` (e.g. features from a cache), the model computes it.
        hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            `(last_hidden_state,)`: the encoder's one hidden state in transformers' layout. The backbone's earlier
            feature maps are not region grids of the decoder (each stage has its own resolution and width).
    """

    last_hidden_state: torch.FloatTensor | None = None
    projected_regions: torch.FloatTensor | None = None
    hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class ShowAttendTellOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`, *optional*, returned when `labels` is given):
            Cross-entropy over non-padding tokens plus `alpha_c * mean((1 - sum_t alpha_t)^2)`, plus
            `attention_entropy_weight` times the mean entropy of `alpha_t` over non-padding steps, divided by
            `log(num_regions)`.
        logits (`torch.FloatTensor` of shape `(batch_size, steps, vocab_size)`):
            Next-word scores for every decoder input position (zeros at the padding after a caption's last label when
            `labels` are given without `use_cache`: those steps are skipped).
        attentions (`torch.FloatTensor` of shape `(batch_size, steps, num_regions)`):
            Soft attention weights `alpha` of every step; each row sums to 1 (zeros at skipped padding steps).
        gates (`torch.FloatTensor` of shape `(batch_size, steps)`):
            The gating scalar `beta` of every step.
        attention_locations (`torch.LongTensor` of shape `(batch_size, steps)`, *optional*):
            Hard attention in training only (`config.attention_type="hard"`, train mode): the region index
            `s_t ~ Multinoulli(alpha_t)` whose feature was the context of each step; -1 where the caption used the
            expected context (probability `config.hard_expected_context_prob`) and at skipped padding steps.
        cache (`ShowAttendTellCache`, *optional*, returned when `use_cache=True`):
            LSTM state after the last step, to continue decoding. Named `past_key_values` under transformers < 5.24;
            `outputs.cache` and `outputs.past_key_values` both read it under every supported release.
        cross_attentions (`tuple(torch.FloatTensor)`, *optional*, returned when `output_attentions=True`):
            `attentions` in the layout of transformers' encoder-decoder models, one tensor of shape
            `(batch_size, 1, steps, num_regions)`; `generate()` collects these.
        decoder_attentions (`None`):
            Always `None` (an LSTM has no self-attention); present because `generate()` reads it.
        encoder_last_hidden_state (`torch.FloatTensor` of shape `(batch_size, num_regions, encoder_dim)`):
            The region features the decoder attended to.
        decoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            The LSTM's hidden state `h_t` after every step, one tensor of shape `(batch_size, steps, decoder_dim)`
            (zeros at skipped padding steps); `generate()` collects these. The tensor that the output layer reads,
            except when `labels` are given without `use_cache` (packed steps): then a padded copy, which gradients
            do not reach.
        encoder_hidden_states (`tuple(torch.FloatTensor)`, *optional*, returned when `output_hidden_states=True`):
            `(encoder_last_hidden_state,)`, as `ShowAttendTellEncoderOutput.hidden_states`.
    """

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    attentions: torch.FloatTensor | None = None
    gates: torch.FloatTensor | None = None
    attention_locations: torch.LongTensor | None = None
    if CACHE_NAME == "cache":
        cache: ShowAttendTellCache | None = None  # `outputs.past_key_values` is transformers' alias of it
    else:
        past_key_values: ShowAttendTellCache | None = None

        @property
        def cache(self) -> ShowAttendTellCache | None:
            return self.past_key_values

    cross_attentions: tuple[torch.FloatTensor, ...] | None = None
    decoder_attentions: tuple[torch.FloatTensor, ...] | None = None
    encoder_last_hidden_state: torch.FloatTensor | None = None
    decoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    encoder_hidden_states: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class ShowAttendTellDecoderStepOutput(ModelOutput):
    """One step of the decoder (`ShowAttendTellForConditionalGeneration.decoder_step`) for `rows` sequences.

    Args:
        logits (`torch.FloatTensor` of shape `(rows, vocab_size)`, *optional*):
            Next-word scores; `None` when the step was asked not to compute them (`output_logits=False`).
        attentions (`torch.FloatTensor` of shape `(rows, num_regions)`):
            The soft attention weights `alpha` of the step; each row sums to 1.
        gates (`torch.FloatTensor` of shape `(rows,)`):
            The mean of the gating vector `beta` of the step.
        hidden (`torch.FloatTensor` of shape `(rows, decoder_dim)`):
            The LSTM's new hidden state `h_t`.
        cell (`torch.FloatTensor` of shape `(rows, decoder_dim)`):
            The LSTM's new cell state `c_t`.
        context (`torch.FloatTensor` of shape `(rows, encoder_dim)`):
            The gated context `z_t` that the LSTM read (and the deep output layer reads).
        attention_locations (`torch.LongTensor` of shape `(rows,)`, *optional*):
            Hard attention in training only: the sampled region index of each row, -1 where the row used the expected
            context; `None` otherwise.
    """

    logits: torch.FloatTensor | None = None
    attentions: torch.FloatTensor | None = None
    gates: torch.FloatTensor | None = None
    hidden: torch.FloatTensor | None = None
    cell: torch.FloatTensor | None = None
    context: torch.FloatTensor | None = None
    attention_locations: torch.LongTensor | None = None


class ShowAttendTellCache:
    """LSTM state carried between `generate()` steps: `hidden` and `cell` of shape `(rows, decoder_dim)`, one row per
    sequence being decoded (`batch_size * num_beams` in beam search).

    It offers the part of transformers' `Cache` interface that generation uses (`get_seq_length`, `reorder_cache`,
    `is_compileable`, `is_linear`) without subclassing `Cache`, whose layer machinery is built for key/value tensors
    and changes between releases. An output's cache can be passed back to `generate()`, with the output's sequences
    as `decoder_input_ids`, to continue them.
    """

    is_compileable = False  # generate() compiles decoding steps for static key/value caches; an LSTM state is none
    # One recurrent layer, like the state of transformers' Mamba models: a fixed-size summary of every token seen, not
    # one entry per token, so generate() never slices the inputs by the cache's length (the newest token is fed).
    is_linear = (True,)

    def __init__(self, hidden: torch.Tensor, cell: torch.Tensor, seq_length: int):
        self.hidden = hidden
        self.cell = cell
        self.seq_length = seq_length

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.seq_length

    def reorder_cache(self, beam_idx: torch.LongTensor) -> None:
        """Keep the rows that beam search continues (in place, as `Cache.reorder_cache`)."""
        beam_idx = beam_idx.to(self.hidden.device)
        self.hidden, self.cell = self.hidden[beam_idx], self.cell[beam_idx]


# --------------------------------------------------------------------------------------------------------------------
# Encoder
# --------------------------------------------------------------------------------------------------------------------


def check_pixel_values(pixel_values: torch.Tensor | None, min_side: int = 1) -> None:
    """Raise `ValueError` unless `pixel_values` is a float tensor of shape `(batch_size >= 1, 3, height, width)` with
    `height` and `width` at least `min_side`."""
    if pixel_values is None:
        raise ValueError("pixel_values: missing; pass the processor's pixel_values (or encoder_outputs)")
    if not isinstance(pixel_values, torch.Tensor) or not pixel_values.is_floating_point():
        got = pixel_values.dtype if isinstance(pixel_values, torch.Tensor) else type(pixel_values).__name__
        raise ValueError(
            "pixel_values: expected a float tensor of shape (batch_size, 3, height, width) from the processor, "
            f"got {got}"
        )
    if pixel_values.dim() != 4 or pixel_values.shape[0] == 0 or pixel_values.shape[1] != 3:
        raise ValueError(
            f"pixel_values: expected shape (batch_size >= 1, 3, height, width), got {tuple(pixel_values.shape)}"
            + (" (one image without its batch dimension? use pixel_values[None])" if pixel_values.dim() == 3 else "")
        )
    if min(pixel_values.shape[2:]) < min_side:
        raise ValueError(
            f"pixel_values: images of {tuple(pixel_values.shape[2:])} pixels are smaller than the backbone's stride "
            f"{min_side}; use the model's processor, which resizes them"
        )


def sinusoidal_positions(rows: int, columns: int, dim: int) -> torch.Tensor:
    """`(rows * columns, dim)` fixed 2-D position codes: sines and cosines of the row in the first half of the
    channels, of the column in the second half (transformer-style frequencies)."""
    half = dim // 2
    frequencies = torch.exp(-math.log(10000.0) * torch.arange(0, half, 2, dtype=torch.float32) / half)

    def encode(positions: torch.Tensor, width: int) -> torch.Tensor:
        angles = positions[:, None] * frequencies[None]
        return torch.cat([angles.sin(), angles.cos()], dim=1)[:, :width]  # (positions, width)

    row = encode(torch.arange(rows, dtype=torch.float32), half)
    column = encode(torch.arange(columns, dtype=torch.float32), dim - half)
    codes = torch.cat([row[:, None].expand(rows, columns, half), column[None].expand(rows, columns, dim - half)], -1)
    return codes.reshape(rows * columns, dim)


class ShowAttendTellRegionProjection(nn.Linear):
    """The attention key of each region, `W_a a_i`, plus its 2-D position embedding when
    `config.position_embedding` is `"learned"` (row + column embeddings) or `"sinusoidal"` (fixed)."""

    def __init__(self, config: ShowAttendTellConfig):
        super().__init__(config.encoder_dim, config.attention_dim)
        self.kind = getattr(config, "position_embedding", "none")
        self.grid_size = rows, columns = config.grid_size
        if self.kind == "learned":
            self.row_embedding = nn.Parameter(torch.zeros(rows, 1, config.attention_dim))
            self.column_embedding = nn.Parameter(torch.zeros(1, columns, config.attention_dim))

    def forward(self, regions: torch.Tensor) -> torch.Tensor:
        keys = super().forward(regions)  # (batch, num_regions, attention_dim)
        if self.kind == "learned":
            return keys + (self.row_embedding + self.column_embedding).flatten(0, 1).to(keys.dtype)
        if self.kind == "sinusoidal":  # computed here: fixed, tiny, and nothing to save or to lose on loading
            return keys + sinusoidal_positions(*self.grid_size, keys.shape[-1]).to(keys)
        return keys


class ShowAttendTellEncoder(nn.Module):
    """A timm backbone's feature map `config.feature_index`, flattened to regions in row-major order, at its native
    resolution (no resizing of the grid). The configuration derived the grid and channels from the same backbone."""

    main_input_name = "pixel_values"

    def __init__(self, config: ShowAttendTellConfig):
        super().__init__()
        self.backbone = timm.create_model(
            config.backbone, pretrained=False, features_only=True, out_indices=(config.feature_index,)
        )
        if self.backbone.feature_info.channels()[-1] != config.encoder_dim:
            raise ValueError(
                f"config.encoder_dim={config.encoder_dim} but backbone {config.backbone!r} has "
                f"{self.backbone.feature_info.channels()[-1]} channels"
            )
        self.stride = self.backbone.feature_info.reduction()[-1]  # pixels per grid cell
        # timm initialised the backbone's weights; transformers' `_init_weights` must not overwrite them. Its
        # normalisation statistics (buffers, the same for every timm model) are `_init_weights`'s, so that a model
        # built on the meta device and initialised with `init_weights()` gets them right.
        for module in self.backbone.modules():
            if not isinstance(module, nn.modules.batchnorm._NormBase):
                module._is_hf_initialized = True
        self.region_projection = ShowAttendTellRegionProjection(config)  # W_a in the paper (+ positions)
        self.frozen_blocks: list[nn.Module] = []

    def backbone_features(self, pixel_values: torch.FloatTensor) -> torch.FloatTensor:
        """Region features of the backbone alone (what the feature cache stores)."""
        check_pixel_values(pixel_values, min_side=self.stride)
        pixel_values = pixel_values.to(self.region_projection.weight.dtype)  # float64 arrays, half models, ...
        # channels_last runs the CNN faster (benchmarks/bench_epoch_cache.py), and its output is already laid out as
        # one contiguous vector per region.
        pixel_values = pixel_values.contiguous(memory_format=torch.channels_last)
        feature_map = self.backbone(pixel_values)[-1]  # (batch, encoder_dim, height, width)
        return feature_map.flatten(2).transpose(1, 2)  # (batch, height * width, encoder_dim)

    def forward(
        self,
        pixel_values: torch.FloatTensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> ShowAttendTellEncoderOutput | tuple:
        regions = self.backbone_features(pixel_values)  # (batch, num_regions, encoder_dim)
        outputs = ShowAttendTellEncoderOutput(
            last_hidden_state=regions,
            projected_regions=self.region_projection(regions),
            hidden_states=(regions,) if output_hidden_states else None,
        )
        return outputs if return_dict is not False else outputs.to_tuple()

    def blocks(self) -> list[nn.Module]:
        """The backbone's parameterised blocks from input to output (stem parts first, then each stage)."""
        blocks = []
        for child in self.backbone.children():
            parts = child.children() if isinstance(child, (nn.Sequential, nn.ModuleList, nn.ModuleDict)) else [child]
            blocks.extend(part for part in parts if any(True for _ in part.parameters()))
        return blocks

    def set_trainable_blocks(self, num_blocks: int | None) -> None:
        """Freeze the backbone except its top `num_blocks` blocks (`None`: train all, `0`: freeze all).

        Frozen blocks stay in eval mode, so their BatchNorm statistics never drift, even under `model.train()`.
        """
        blocks = self.blocks()
        keep = len(blocks) if num_blocks is None else min(num_blocks, len(blocks))
        self.frozen_blocks = blocks[: len(blocks) - keep]
        for block in blocks:
            block.requires_grad_(block not in self.frozen_blocks)
        self.train(self.training)

    def train(self, mode: bool = True) -> ShowAttendTellEncoder:
        super().train(mode)
        for block in self.frozen_blocks:
            block.eval()
        return self


# --------------------------------------------------------------------------------------------------------------------
# Attention
# --------------------------------------------------------------------------------------------------------------------


CPU_ENERGY_CHUNK_ELEMENTS = 2**19  # 2 MiB of float32 (benchmarks/bench_generate.py measures the choice)


class ShowAttendTellAttention(nn.Module):
    """Deterministic soft attention with the gating scalar beta (paper sections 4.2 and 4.2.1)."""

    def __init__(self, config: ShowAttendTellConfig):
        super().__init__()
        self.hidden_projection = nn.Linear(config.decoder_dim, config.attention_dim)  # W_h
        self.score = nn.Linear(config.attention_dim, 1)  # w
        self.gate = nn.Linear(config.decoder_dim, config.encoder_dim)  # f_beta
        self.temperature = getattr(config, "attention_temperature", 1.0)

    def forward(
        self, regions: torch.Tensor, projected_regions: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # regions: (images, num_regions, encoder_dim); projected_regions: (images, num_regions, attention_dim)
        # hidden: (rows, decoder_dim) where rows = images * copies: the rows of one image are consecutive.
        images, num_regions, attention_dim = projected_regions.shape
        query = self.hidden_projection(hidden).view(images, -1, 1, attention_dim)  # (images, copies, 1, attention_dim)
        # The energy (images, copies, num_regions, attention_dim) is the largest tensor of a step. On CPU it is built a
        # few images at a time, so that each piece stays in the processor cache (1.5x faster beam search).
        # torch.export traces the energy in one piece: the number of rows is a dynamic dimension of the exported step.
        pieces = [(projected_regions, query)]
        if projected_regions.device.type == "cpu" and not torch.compiler.is_exporting():
            chunk = max(1, CPU_ENERGY_CHUNK_ELEMENTS // (query.shape[1] * num_regions * attention_dim))
            pieces = zip(projected_regions.split(chunk), query.split(chunk), strict=True)
        # w^T tanh(x) + b == 2 w^T sigmoid(2x) + b - sum(w): the same scores, but torch's sigmoid is several times
        # faster than its tanh on CPU (the mul_ and sigmoid_ run in place on the fresh sum).
        scores = torch.cat(
            [
                self.score(torch.add(projected.unsqueeze(1), rows).mul_(2.0).sigmoid_()).squeeze(-1)
                for projected, rows in pieces
            ]
        )
        scores = 2.0 * scores - (self.score.bias + self.score.weight.sum())  # (images, copies, num_regions)
        if self.temperature != 1.0:
            scores = scores / self.temperature
        alpha = scores.softmax(dim=-1)  # (images, copies, num_regions)
        context = torch.bmm(alpha, regions).view(hidden.shape[0], -1)  # (rows, encoder_dim)
        beta = torch.sigmoid(self.gate(hidden))  # (rows, encoder_dim)
        return beta * context, alpha.view(hidden.shape[0], num_regions), beta.mean(dim=-1)

    # Stochastic "hard" attention (paper section 4.1), used by the decoder in training only.

    def draw_locations(self, alpha: torch.Tensor) -> torch.LongTensor:
        """One location per row, `s ~ Multinoulli(alpha)`: `(rows, num_regions)` -> `(rows,)`. Not differentiable;
        the training loss adds the REINFORCE term for `log alpha[s]`."""
        return torch.multinomial(alpha.detach().float(), 1).squeeze(1)

    def hard_context(
        self, regions: torch.Tensor, hidden: torch.Tensor, alpha: torch.Tensor, sampled: torch.Tensor
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """The context of hard attention for the rows where `sampled` is True: the region at a location drawn from
        `alpha`, times the gate `beta` (training, one row per image). Returns the contexts of those rows
        `(sampled.sum(), encoder_dim)` and the locations of all rows `(rows,)`, -1 where `sampled` is False."""
        locations = torch.where(sampled, self.draw_locations(alpha), -1)
        picked = locations[sampled]
        beta = torch.sigmoid(self.gate(hidden[sampled]))  # (sampled rows, encoder_dim)
        return beta * regions[sampled, picked], locations


# --------------------------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------------------------


class ShowAttendTellPreTrainedModel(PreTrainedModel):
    config_class = ShowAttendTellConfig
    config: ShowAttendTellConfig
    base_model_prefix = "show_attend_tell"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = False
    _no_split_modules = ["ShowAttendTellEncoder"]

    @classmethod
    def from_pretrained(cls, *args, **kwargs):
        """`PreTrainedModel.from_pretrained`, from safetensors only: loading never unpickles a weight file."""
        if kwargs.get("use_safetensors") is False:
            raise ValueError("use_safetensors=False: Show-Attend-Tell weights load from safetensors only (no pickle)")
        return super().from_pretrained(*args, **{**kwargs, "use_safetensors": True})

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            init.xavier_uniform_(module.weight)
            if module.bias is not None:
                init.zeros_(module.bias)
            if isinstance(module, ShowAttendTellRegionProjection) and module.kind == "learned":
                init.normal_(module.row_embedding, std=0.1)
                init.normal_(module.column_embedding, std=0.1)
        elif isinstance(module, nn.Embedding):
            init.uniform_(module.weight, -0.1, 0.1)
        elif isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
            # Only the running statistics: the affine weights are timm's (some backbones zero the last one of a block).
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)
        elif isinstance(module, nn.LSTMCell):
            for name, param in module.named_parameters():
                if "weight" in name:
                    init.xavier_uniform_(param)
                else:
                    init.zeros_(param)


class ShowAttendTellForConditionalGeneration(ShowAttendTellPreTrainedModel, GenerationMixin):
    """Show, Attend and Tell: encoder, soft or stochastic hard attention (`config.attention_type`) and LSTM decoder,
    with transformers' `generate()`.

    A hard model in train mode samples one location per step for a random half of the captions
    (`hard_expected_context_prob`) and reports them as `outputs.attention_locations`; its `loss` is then the word
    loss of the sampled locations, and the REINFORCE term of the paper's gradient (eq. 12) is the training loss's
    job (`training/hard_attention.py`). In eval mode a hard model decodes with the expected context (`generate`).

    `generate(pixel_values, output_attentions=True, return_dict_in_generate=True)` also returns `attention_maps`:
    for each returned sequence (beam search included), the attention of every generated token,
    shape `(num_sequences, generated_tokens, num_regions)`.
    """

    def __init__(self, config: ShowAttendTellConfig):
        super().__init__(config)
        self.encoder = ShowAttendTellEncoder(config)
        self.attention = ShowAttendTellAttention(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.embed_dim)
        self.init_hidden = nn.Linear(config.encoder_dim, config.decoder_dim)
        self.init_cell = nn.Linear(config.encoder_dim, config.decoder_dim)
        self.lstm = nn.LSTMCell(config.embed_dim + config.encoder_dim, config.decoder_dim)
        self.dropout = nn.Dropout(config.dropout)
        if config.deep_output:  # paper eq. 7: L_o(E y_{t-1} + L_h h_t + L_z z_t)
            self.output_hidden = nn.Linear(config.decoder_dim, config.embed_dim)  # L_h
            self.output_context = nn.Linear(config.encoder_dim, config.embed_dim)  # L_z
            self.lm_head = nn.Linear(config.embed_dim, config.vocab_size)  # L_o
        else:
            self.lm_head = nn.Linear(config.decoder_dim, config.vocab_size)
        self.post_init()
        self.generation_config.max_new_tokens = self.generation_config.max_new_tokens or 30

    def get_encoder(self, modality: str | None = None) -> ShowAttendTellEncoder:
        return self.encoder

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def freeze_encoder(self, trainable_blocks: int = 0) -> None:
        """Freeze the CNN backbone except its top `trainable_blocks` blocks (frozen blocks stay in eval mode)."""
        self.encoder.set_trainable_blocks(trainable_blocks)

    # ----------------------------------------------------------------------------------------------------------------
    # Decoder
    # ----------------------------------------------------------------------------------------------------------------

    def initial_state(self, regions: torch.Tensor, copies: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """The LSTM state before the first word, from the mean region feature (paper eq. 5).

        `regions` `(images, num_regions, encoder_dim)` -> `(hidden, cell)`, each `(images * copies, decoder_dim)`: the
        `copies` rows of image `i` are rows `i * copies ... (i + 1) * copies - 1` (beams, or returned sequences)."""
        mean_region = regions.mean(dim=1)  # (images, encoder_dim)
        hidden, cell = torch.tanh(self.init_hidden(mean_region)), torch.tanh(self.init_cell(mean_region))
        return hidden.repeat_interleave(copies, dim=0), cell.repeat_interleave(copies, dim=0)

    def decoder_step(
        self,
        input_ids: torch.LongTensor | None,
        state: tuple[torch.Tensor, torch.Tensor],
        regions: torch.Tensor,
        projected_regions: torch.Tensor,
        hard_rows: torch.BoolTensor | None = None,
        output_logits: bool = True,
        *,
        inputs_embeds: torch.FloatTensor | None = None,
    ) -> ShowAttendTellDecoderStepOutput:
        """One decoding step: attend to the regions from the current state, feed the previous word and the context to
        the LSTM, score the next word. `forward()` (so training and `generate()`) and the ONNX export run this step.

        Args:
            input_ids (`torch.LongTensor` of shape `(rows,)`):
                The previous word of each sequence (`decoder_start_token_id` at the first step).
            state (`tuple(torch.FloatTensor)`):
                `(hidden, cell)`, each `(rows, decoder_dim)`: the LSTM state (`initial_state` before the first step).
            regions (`torch.FloatTensor` of shape `(images, num_regions, encoder_dim)`):
                Region features; `rows` is a multiple of `images`, the rows of image `i` consecutive.
            projected_regions (`torch.FloatTensor` of shape `(images, num_regions, attention_dim)`):
                Their attention projection `W_a a_i` (`model.encoder.region_projection(regions)`).
            hard_rows (`torch.BoolTensor` of shape `(rows,)`, *optional*):
                Hard attention in training (one row per image): the rows whose context is the region at a location
                drawn from `alpha` (paper section 4.1) instead of the expected context.
            output_logits (`bool`, defaults to `True`):
                Compute `logits`. `forward()` passes `False` and applies `output_logits` once to all its steps (the
                same computation, in one matrix product).
            inputs_embeds (`torch.FloatTensor` of shape `(rows, embed_dim)`, *optional*):
                The previous words' embeddings instead of `input_ids` (`forward()` embeds all its steps at once).

        Returns:
            `ShowAttendTellDecoderStepOutput`: `logits`, `attentions`, `gates`, the new `hidden` and `cell`, the
            `context`, and `attention_locations` when `hard_rows` is given.
        """
        hidden, cell = state
        context, alpha, beta = self.attention(regions, projected_regions, hidden)
        locations = None
        if hard_rows is not None:
            hard, locations = self.attention.hard_context(regions, hidden, alpha, hard_rows)
            context = context.index_put((hard_rows,), hard.to(context.dtype))
        embeddings = self.embed_tokens(input_ids) if inputs_embeds is None else inputs_embeds  # (rows, embed_dim)
        hidden, cell = self.lstm(torch.cat([embeddings, context], dim=-1), (hidden, cell))
        logits = self.output_logits(embeddings, hidden, context) if output_logits else None
        # (logits, attentions, gates, hidden, cell, context, attention_locations), the order of the output's fields
        return ShowAttendTellDecoderStepOutput(logits, alpha, beta, hidden, cell, context, locations)

    def output_logits(self, embeddings: torch.Tensor, hiddens: torch.Tensor, contexts: torch.Tensor) -> torch.Tensor:
        """The output layer: next-word logits `(tokens, vocab_size)` from the previous words' embeddings
        `(tokens, embed_dim)`, the LSTM's new hidden states `(tokens, decoder_dim)` and the contexts
        `(tokens, encoder_dim)` of any number of steps (paper eq. 7 with `config.deep_output`)."""
        if self.config.deep_output:
            features = torch.tanh(embeddings + self.output_hidden(hiddens) + self.output_context(contexts))
        else:
            features = hiddens
        return self.lm_head(self.dropout(features))

    def _decode(
        self,
        regions: torch.Tensor,
        projected_regions: torch.Tensor,
        step_embeddings: torch.Tensor,
        batch_sizes: list[int],
        state: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor | None, ...]:
        """Run `decoder_step` over time-major `step_embeddings` of shape `(sum(batch_sizes), embed_dim)`, the layout of
        a `PackedSequence`: step `t` feeds the first `batch_sizes[t]` rows, so rows sorted by length leave the loop
        when their caption ends. Returns the LSTM's hidden states, the contexts, attentions, gates and the sampled
        hard-attention locations (-1: the expected context; `None` unless a hard model is training) in the same
        layout, and the last state.

        Only the recurrence is in the Python loop; the caller applies the output layer (`output_logits`) once over all
        steps.
        """
        steps = []
        # Hard attention in training: each caption (row) samples its locations, or, with probability
        # `hard_expected_context_prob`, keeps the expected context at every step (paper section 4.1).
        sampled = None
        if self.training and self.config.attention_type == "hard" and regions.shape[0] == state[0].shape[0]:
            sampled = torch.rand(state[0].shape[0], device=state[0].device) >= self.config.hard_expected_context_prob
        for embeddings in step_embeddings.split(batch_sizes):  # (rows still running, embed_dim)
            rows = embeddings.shape[0]
            if rows < state[0].shape[0]:  # captions ended: only when rows are images (training), never across copies
                state = (state[0][:rows], state[1][:rows])
                regions, projected_regions = regions[:rows], projected_regions[:rows]
            hard_rows = sampled[:rows] if sampled is not None else None
            step = self.decoder_step(
                None, state, regions, projected_regions, hard_rows, output_logits=False, inputs_embeds=embeddings
            )
            state = (step.hidden, step.cell)
            steps.append(step)
        locations = torch.cat([step.attention_locations for step in steps]) if sampled is not None else None
        hiddens, contexts, alphas, betas = (
            torch.cat([getattr(step, name) for step in steps]) for name in ("hidden", "context", "attentions", "gates")
        )
        return hiddens, contexts, alphas, betas, locations, state

    def _loss(
        self, logits: torch.Tensor, labels: torch.LongTensor, alphas: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        # logits: (tokens, vocab_size) and labels: (tokens,), any layout; alphas: (batch, steps, num_regions) and
        # valid: (batch, steps), True where labels are not -100.
        word_loss = F.cross_entropy(
            logits.float(), labels, ignore_index=-100, label_smoothing=self.config.label_smoothing
        )
        # Doubly stochastic regularisation (paper eq. 14): every region should receive ~1 unit of attention over the
        # caption. Padded steps do not count.
        attention_per_region = (alphas * valid.unsqueeze(-1).to(alphas.dtype)).sum(dim=1)  # (batch, num_regions)
        loss = word_loss + self.config.alpha_c * ((1.0 - attention_per_region) ** 2).mean()
        if self.config.attention_entropy_weight and alphas.shape[-1] > 1:
            # Sharpening (not in the paper): the entropy of each counted step's map, as a fraction of a uniform map's.
            # The clamp keeps the gradient finite where a weight is 0 (padding, or an underflowed softmax).
            log_alphas = alphas.clamp_min(torch.finfo(alphas.dtype).tiny).log()
            entropy = -(alphas * log_alphas).sum(-1) / math.log(alphas.shape[-1])  # (batch, steps)
            loss = loss + self.config.attention_entropy_weight * entropy[valid].mean()
        return loss

    def forward(
        self,
        pixel_values: torch.FloatTensor | None = None,
        decoder_input_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        encoder_outputs: ModelOutput | tuple | None = None,
        cache: ShowAttendTellCache | None = None,
        use_cache: bool | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: ShowAttendTellCache | None = None,
        **kwargs,
    ) -> ShowAttendTellOutput | tuple:
        r"""
        pixel_values (`torch.FloatTensor` of shape `(batch_size, 3, height, width)`, *optional*):
            Images from the processor. Not needed when `encoder_outputs` is given.
        decoder_input_ids (`torch.LongTensor` of shape `(rows, steps)`, *optional*):
            Decoder inputs; built from `labels` (shifted right behind `decoder_start_token_id`) when omitted. `rows`
            is `batch_size`, or a multiple of it (`generate()`: the beams of image `i` are rows
            `i * copies ... (i + 1) * copies - 1`).
        labels (`torch.LongTensor` of shape `(batch_size, steps)`, *optional*):
            Target words ending with `eos`, padding set to -100. Unless `use_cache=True`, steps after a row's last
            label are skipped: their logits and attentions come back as zeros.
        encoder_outputs (`ShowAttendTellEncoderOutput`, tuple or `ModelOutput`, *optional*):
            Precomputed region features (`last_hidden_state`, and optionally `projected_regions`); any `ModelOutput`
            with a `last_hidden_state`, such as `BaseModelOutput`, works.
        cache (`ShowAttendTellCache`, *optional*):
            LSTM state to continue from; the state is initialised from the mean region feature when omitted.
        use_cache (`bool`, *optional*):
            Return the LSTM state as `cache`. Defaults to `config.use_cache` in eval mode without `labels`, else
            `False`.
        output_attentions (`bool`, *optional*):
            Also return `cross_attentions` (defaults to `config.output_attentions`).
        output_hidden_states (`bool`, *optional*):
            Also return `decoder_hidden_states` and `encoder_hidden_states` (defaults to
            `config.output_hidden_states`).
        return_dict (`bool`, *optional*):
            Return a `ShowAttendTellOutput` rather than a tuple of its fields that are not `None` (defaults to
            `config.return_dict`).
        past_key_values (`ShowAttendTellCache`, *optional*):
            The name of `cache` before transformers 5.24; either name works under every supported release.
        """
        # 1. The LSTM state to continue from, under either name.
        if past_key_values is not None:
            if cache is not None:
                raise ValueError("Pass the LSTM state as `cache` or as `past_key_values`, not both.")
            cache = past_key_values
        if cache is not None and not isinstance(cache, ShowAttendTellCache):
            raise TypeError(f"`cache` must be the ShowAttendTellCache of an earlier call, not {type(cache).__name__}")

        output_attentions = output_attentions if output_attentions is not None else self.config.output_attentions
        if output_hidden_states is None:
            output_hidden_states = self.config.output_hidden_states
        return_dict = return_dict if return_dict is not None else self.config.return_dict

        # 2. Region features and their attention projection, one copy per image.
        if encoder_outputs is None:
            if pixel_values is None:
                raise ValueError("Pass either `pixel_values` or `encoder_outputs`.")
            encoder_outputs = self.encoder(pixel_values)
        encoder_outputs = self._region_features(encoder_outputs)
        regions = encoder_outputs.last_hidden_state  # (images, num_regions, encoder_dim)
        projected_regions = encoder_outputs.projected_regions  # (images, num_regions, attention_dim)

        # 3. Decoder inputs: `rows` sequences, `copies` per image (beams or returned sequences in generate()).
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("Pass `decoder_input_ids` or `labels` to run the decoder.")
            decoder_input_ids = self._shift_right(labels)
        rows, steps = decoder_input_ids.shape
        if rows % regions.shape[0] != 0:
            raise ValueError(
                f"decoder_input_ids has {rows} rows, not a multiple of the {regions.shape[0]} images' region features"
            )
        if labels is not None and labels.shape != decoder_input_ids.shape:
            raise ValueError(f"labels has shape {tuple(labels.shape)}, decoder inputs {tuple(decoder_input_ids.shape)}")
        copies = rows // regions.shape[0]

        # 4. The initial state: from the mean region (paper eq. 5), or the cache.
        if cache is None:
            state, past_length = self.initial_state(regions, copies), 0
        else:
            state, past_length = (cache.hidden, cache.cell), cache.get_seq_length()
        if use_cache is None:
            use_cache = self.config.use_cache and labels is None and not self.training

        # 5. Decode: the packed path for teacher forcing (training), the step path otherwise (generation).
        embeddings = self.embed_tokens(decoder_input_ids)  # (rows, steps, embed_dim)
        if labels is not None and not use_cache and copies == 1:
            loss, logits, alphas, betas, locations, hiddens, (hidden, cell) = self._forward_packed(
                regions, projected_regions, embeddings, labels, state
            )
        else:
            loss, logits, alphas, betas, locations, hiddens, (hidden, cell) = self._forward_steps(
                regions, projected_regions, embeddings, labels, state
            )

        outputs = ShowAttendTellOutput(
            loss=loss,
            logits=logits,
            attentions=alphas,
            gates=betas,
            attention_locations=locations,
            cross_attentions=(alphas.unsqueeze(1),) if output_attentions else None,
            encoder_last_hidden_state=regions,
            decoder_hidden_states=(hiddens,) if output_hidden_states else None,
            encoder_hidden_states=(regions,) if output_hidden_states else None,
            **{CACHE_NAME: ShowAttendTellCache(hidden, cell, past_length + steps) if use_cache else None},
        )
        return outputs if return_dict else outputs.to_tuple()

    def _forward_packed(
        self,
        regions: torch.Tensor,
        projected_regions: torch.Tensor,
        embeddings: torch.Tensor,
        labels: torch.LongTensor,
        state: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor, ...]:
        """Teacher forcing without a cache, one row per image: each caption leaves the LSTM loop after its last label.
        Returns `(loss, logits, alphas, betas, locations, hiddens, state)`, in batch order, zeros at the skipped
        padding steps (-1 in `locations`, which is `None` unless a hard model is training)."""
        steps = labels.shape[1]
        # 1. Caption lengths (up to the last label) and the packed, length-sorted layout of the inputs.
        valid = labels != -100  # (batch, steps)
        lengths = (valid * torch.arange(1, steps + 1, device=labels.device)).amax(dim=1).clamp(min=1).cpu()
        packed = pack_padded_sequence(embeddings, lengths, batch_first=True, enforce_sorted=False)
        order = packed.sorted_indices

        # 2. The recurrence over the packed steps, with regions and state sorted like the rows.
        hiddens, contexts, alphas, betas, locations, last_state = self._decode(
            regions[order],
            projected_regions[order],
            packed.data,
            packed.batch_sizes.tolist(),
            (state[0][order], state[1][order]),
        )
        logits = self.output_logits(packed.data, hiddens, contexts)

        # 3. Back to (batch, steps, ...) in batch order, zero-padded; the loss on the packed tokens.
        def unpack(values: torch.Tensor) -> torch.Tensor:  # (tokens, ...) -> (batch, steps, ...)
            return pad_packed_sequence(packed._replace(data=values), batch_first=True, total_length=steps)[0]

        packed_labels = pack_padded_sequence(labels, lengths, batch_first=True, enforce_sorted=False).data
        alphas, betas = unpack(alphas), unpack(betas)
        if locations is not None:
            locations = unpack(locations + 1) - 1  # padding -> -1
        loss = self._loss(logits, packed_labels, alphas, valid)
        return loss, unpack(logits), alphas, betas, locations, unpack(hiddens), last_state

    def _forward_steps(
        self,
        regions: torch.Tensor,
        projected_regions: torch.Tensor,
        embeddings: torch.Tensor,
        labels: torch.LongTensor | None,
        state: tuple[torch.Tensor, torch.Tensor],
    ) -> tuple[torch.Tensor | None, ...]:
        """Every row runs every step (generation: one step per call; or teacher forcing with a cache, or with several
        copies per image). Returns `(loss, logits, alphas, betas, locations, hiddens, state)`; `loss` is None without
        `labels`, `locations` unless a hard model is training."""
        rows, steps = embeddings.shape[:2]
        # 1. Time-major steps, all rows running.
        step_embeddings = embeddings.transpose(0, 1).reshape(rows * steps, -1)  # (steps * rows, embed_dim)
        hiddens, contexts, alphas, betas, locations, last_state = self._decode(
            regions, projected_regions, step_embeddings, [rows] * steps, state
        )

        # 2. Back to (rows, steps, ...); the loss when labels are given.
        def unstack(values: torch.Tensor) -> torch.Tensor:  # (steps * rows, ...) -> (rows, steps, ...)
            return values.view(steps, rows, *values.shape[1:]).transpose(0, 1)

        # The returned hidden states feed the output layer (gradients reach them), in the same memory layout.
        hiddens = unstack(hiddens)
        logits = unstack(
            self.output_logits(step_embeddings, hiddens.transpose(0, 1).reshape(rows * steps, -1), contexts)
        )
        alphas, betas = unstack(alphas), unstack(betas)
        locations = unstack(locations) if locations is not None else None
        loss = None
        if labels is not None:
            loss = self._loss(logits.reshape(rows * steps, -1), labels.flatten(), alphas, labels != -100)
        return loss, logits, alphas, betas, locations, hiddens, last_state

    def _region_features(self, encoder_outputs: ModelOutput | tuple | list) -> ShowAttendTellEncoderOutput:
        """Region features and their attention projection, from our encoder's output, a tuple, or any `ModelOutput`
        with `last_hidden_state` (such as `BaseModelOutput`). The projection is computed only when missing; the
        caller's object is left as it was."""
        if isinstance(encoder_outputs, (tuple, list)):
            encoder_outputs = ShowAttendTellEncoderOutput(*encoder_outputs)
        regions = encoder_outputs.get("last_hidden_state")
        if not isinstance(regions, torch.Tensor) or regions.dim() != 3:
            raise ValueError(
                "encoder_outputs.last_hidden_state must be a tensor of shape (batch_size, num_regions, encoder_dim), "
                f"got {type(regions).__name__}{tuple(regions.shape) if isinstance(regions, torch.Tensor) else ''}"
            )
        projected = encoder_outputs.get("projected_regions")
        if projected is None:
            projected = self.encoder.region_projection(regions)
        return ShowAttendTellEncoderOutput(
            last_hidden_state=regions, projected_regions=projected, hidden_states=encoder_outputs.get("hidden_states")
        )

    def _shift_right(self, labels: torch.LongTensor) -> torch.LongTensor:
        # (batch, steps) -> (batch, steps): [w1, ..., wn, eos] -> [bos, w1, ..., wn]; -100 becomes padding
        shifted = labels.new_full(labels.shape, self.config.pad_token_id)
        shifted[:, 1:] = labels[:, :-1]
        shifted[:, 0] = self.config.decoder_start_token_id
        return shifted.masked_fill(shifted == -100, self.config.pad_token_id)

    # ----------------------------------------------------------------------------------------------------------------
    # Generation hooks
    # ----------------------------------------------------------------------------------------------------------------

    @classmethod
    def _supports_default_dynamic_cache(cls) -> bool:
        # The state is an LSTM's (h, c), not key/value tensors: the model creates its own cache.
        return False

    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, **model_kwargs) -> dict:
        """The inputs of one decoding step. Once there is an LSTM state, it stands for every earlier token, so only
        the newest token is fed; every other model keyword (`output_hidden_states`, ...) is passed on, as by
        `GenerationMixin.prepare_inputs_for_generation`. (Overriding this documented hook keeps our decoding
        independent of how each transformers release slices inputs for key/value caches.)"""
        cache = model_kwargs.pop(CACHE_NAME, None)
        return {
            **model_kwargs,
            "decoder_input_ids": input_ids if cache is None else input_ids[:, -1:],  # (rows, steps) or (rows, 1)
            "cache": cache,
        }

    def _expand_inputs_for_generation(
        self,
        expand_size: int = 1,
        is_encoder_decoder: bool = False,
        input_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> tuple[torch.LongTensor | None, dict]:
        # Beam search and `num_return_sequences` decode `expand_size` rows per image. transformers would repeat the
        # encoder outputs for every row; ours stay one copy per image, which forward() shares between its rows.
        encoder_outputs = kwargs.pop("encoder_outputs", None)
        input_ids, kwargs = super()._expand_inputs_for_generation(expand_size, False, input_ids, **kwargs)
        if encoder_outputs is not None:
            kwargs["encoder_outputs"] = encoder_outputs
        return input_ids, kwargs

    @torch.inference_mode()
    def generate(self, pixel_values: torch.FloatTensor | None = None, **kwargs):
        """transformers' `generate()`, plus `attention_maps` when `output_attentions` and `return_dict_in_generate`.

        `attention_maps` has shape `(num_sequences, generated_tokens, num_regions)`: row `t` is the attention used to
        produce token `t + 1` of `sequences` (the token after `decoder_start_token_id`); rows past a sequence's end
        are zero.

        Hard attention (`config.attention_type="hard"`) at test time: generation is deterministic in the locations.
        Each step uses the expected context `beta * sum_i alpha_i a_i` (the mean of the distribution the training
        samples were drawn from), as the paper's authors did when they decoded their stochastic models (their
        sampler's default, the "deterministic approximation" of section 4.1 that training also uses for half of the
        captions). Drawing a location per step instead would make greedy and beam search random and, with beams,
        score every beam on a different random context. So `attention_maps` of a hard model hold `alpha`, the
        distribution its locations are drawn from in training, exactly as for a soft model, and the output also has
        `attention_locations` of shape `(num_sequences, generated_tokens)`: the most probable location
        `argmax_i alpha_i` of every token (row-major index into `config.grid_size`; -1 past a sequence's end), the
        cell a single hard glimpse would most likely take.
        """
        if kwargs.get("encoder_outputs") is not None:
            # The projection is computed here, once per image, rather than by forward() at every step.
            kwargs["encoder_outputs"] = self._region_features(kwargs["encoder_outputs"])
            if kwargs["encoder_outputs"].last_hidden_state.shape[0] == 0:
                raise ValueError("encoder_outputs: no images (batch size 0)")
        else:
            check_pixel_values(pixel_values)  # before generate() derives the batch size from it
        outputs = super().generate(pixel_values, **kwargs)
        if isinstance(outputs, torch.Tensor) or getattr(outputs, "cross_attentions", None) is None:
            return outputs
        step_maps = torch.stack([step[0][:, 0, -1] for step in outputs.cross_attentions], dim=1)  # (rows, steps, R)
        beam_indices = getattr(outputs, "beam_indices", None)
        if beam_indices is None:  # greedy or sampling: row i of every step belongs to sequence i
            maps = step_maps
        else:  # beam search: follow each returned sequence back through the beams it came from
            steps = beam_indices.shape[1]
            gather = beam_indices.clamp(min=0).long()  # (num_sequences, steps)
            maps = step_maps[gather, torch.arange(steps, device=gather.device)]
            maps = maps * (beam_indices >= 0).unsqueeze(-1)
        generated = outputs.sequences[:, 1:]  # (num_sequences, generated_tokens)
        maps = maps[:, : generated.shape[1]]
        # Zero the rows after a sequence's end (its end token's row, the attention that produced it, stays).
        lengths = caption_lengths(generated, kwargs.get("eos_token_id", self.generation_config.eos_token_id))
        maps = maps * (torch.arange(generated.shape[1], device=generated.device) <= lengths[:, None]).unsqueeze(-1)
        outputs["attention_maps"] = maps
        if self.config.attention_type == "hard":
            outputs["attention_locations"] = torch.where(maps.sum(-1) > 0, maps.argmax(-1), -1)
        return outputs


__all__ = [
    "ShowAttendTellCache",
    "ShowAttendTellDecoderStepOutput",
    "ShowAttendTellEncoder",
    "ShowAttendTellEncoderOutput",
    "ShowAttendTellForConditionalGeneration",
    "ShowAttendTellOutput",
    "ShowAttendTellPreTrainedModel",
]
