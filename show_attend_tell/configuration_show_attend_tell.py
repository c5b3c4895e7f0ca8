"""Configuration of the Show, Attend and Tell captioner (Xu et al. 2015)."""

from __future__ import annotations

from transformers import PretrainedConfig


class ShowAttendTellConfig(PretrainedConfig):
    r"""
    Configuration for [`ShowAttendTellForConditionalGeneration`]: a timm CNN encoder whose last feature map is a
    grid of region vectors, an additive (Bahdanau) soft attention over those regions, and an LSTM decoder that writes
    the caption one word at a time.

    Generation defaults (beam size, maximum length, ...) live in `generation_config.json`, not here.

    Args:
        backbone (`str`, *optional*, defaults to `"tf_efficientnet_lite0"`):
            Name of any timm model that supports `features_only=True`. Its last feature map is the region grid.
        image_size (`int`, *optional*, defaults to 256):
            Side of the square image fed to the backbone. With a stride-32 backbone, 256 gives an 8x8 grid.
        encoder_dim (`int`, *optional*):
            Channels of the backbone's last feature map. Filled in from the backbone when left `None`.
        attention_dim (`int`, *optional*, defaults to 512):
            Width of the additive attention's hidden layer.
        embed_dim (`int`, *optional*, defaults to 512):
            Width of the word embeddings.
        decoder_dim (`int`, *optional*, defaults to 512):
            Hidden size of the LSTM decoder.
        dropout (`float`, *optional*, defaults to 0.5):
            Dropout before the output layer.
        alpha_c (`float`, *optional*, defaults to 1.0):
            Weight of the doubly stochastic attention regulariser `mean((1 - sum_t alpha_t)^2)` (paper eq. 14).
        label_smoothing (`float`, *optional*, defaults to 0.0):
            Label smoothing of the word cross-entropy.
        deep_output (`bool`, *optional*, defaults to `True`):
            Use the deep output layer of paper eq. 7, `L_o(E y_{t-1} + L_h h_t + L_z z_t)`; otherwise a linear layer
            on `h_t`.
        vocab_size (`int`, *optional*, defaults to 1000):
            Number of words in the tokenizer (special tokens included).
        pad_token_id, bos_token_id, eos_token_id, unk_token_id (`int`, *optional*, default to 0, 1, 2, 3):
            Special token ids of the word-level tokenizer. Generation starts from `bos_token_id`
            (`decoder_start_token_id`).
    """

    model_type = "show_attend_tell"

    def __init__(
        self,
        backbone: str = "tf_efficientnet_lite0",
        image_size: int = 256,
        encoder_dim: int | None = None,
        attention_dim: int = 512,
        embed_dim: int = 512,
        decoder_dim: int = 512,
        dropout: float = 0.5,
        alpha_c: float = 1.0,
        label_smoothing: float = 0.0,
        deep_output: bool = True,
        vocab_size: int = 1000,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        unk_token_id: int = 3,
        **kwargs,
    ):
        self.backbone = backbone
        self.image_size = image_size
        self.encoder_dim = encoder_dim
        self.attention_dim = attention_dim
        self.embed_dim = embed_dim
        self.decoder_dim = decoder_dim
        self.dropout = dropout
        self.alpha_c = alpha_c
        self.label_smoothing = label_smoothing
        self.deep_output = deep_output
        self.vocab_size = vocab_size
        self.unk_token_id = unk_token_id
        kwargs.setdefault("is_encoder_decoder", True)
        kwargs.setdefault("decoder_start_token_id", bos_token_id)
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)


__all__ = ["ShowAttendTellConfig"]
