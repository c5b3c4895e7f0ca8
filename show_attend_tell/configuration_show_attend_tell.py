"""Configuration of the Show, Attend and Tell captioner (Xu et al. 2015)."""

from __future__ import annotations

import transformers
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from transformers import PretrainedConfig

# --------------------------------------------------------------------------------------------------------------------
# transformers compatibility: the one place that knows how releases differ
#
# A saved folder carries this file and runs under whatever transformers its user has installed, so the supported range
# is checked here, when the folder's code is imported (as transformers' own examples check their minimum version).
# pyproject.toml declares the same range for the package; tests/test_compatibility.py keeps the two equal, and CI runs
# the remote-code tests under the lowest, a middle and the newest release of the range.
# --------------------------------------------------------------------------------------------------------------------

TRANSFORMERS_REQUIREMENT = ">=5.0,<6"
TRANSFORMERS_VERSION = Version(transformers.__version__)

if not SpecifierSet(TRANSFORMERS_REQUIREMENT).contains(TRANSFORMERS_VERSION, prereleases=True):
    raise ImportError(
        f"Show-Attend-Tell models need transformers{TRANSFORMERS_REQUIREMENT}, but transformers "
        f"{transformers.__version__} is installed. Install a supported release: "
        f"pip install 'transformers{TRANSFORMERS_REQUIREMENT}'"
    )

# transformers 5.0 copies only a remote-code file's direct relative imports out of a local folder, so no file of a
# saved folder imports another one that imports a third: the modeling file imports this configuration and the
# pipeline, which import no other file of the folder, and the configuration names the classes by reference
# (`auto_map`, `custom_pipelines`) instead of importing them.

# transformers 5.24 renamed the decoding state `past_key_values` to `cache`: in forward() keywords, in the field of
# model outputs that generate() reads, and in the keyword that generate() passes back and beam search reorders.
CACHE_NAME = "cache" if TRANSFORMERS_VERSION.release >= (5, 24) else "past_key_values"

# --------------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------------

MODEL_REFERENCE = "modeling_show_attend_tell.ShowAttendTellForConditionalGeneration"
PIPELINE_TASK = "image-to-text"
PIPELINE_SPEC = {
    "impl": "pipeline_show_attend_tell.ShowAttendTellCaptioningPipeline",
    "pt": ["AutoModelForImageTextToText"],
    "type": "image",
}


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
        # Saved folders load with AutoModelForImageTextToText and run as `pipeline(model=DIR, trust_remote_code=True)`
        # (AutoConfig and AutoModel are added by `register_for_auto_class` when the folder is saved).
        kwargs["auto_map"] = {"AutoModelForImageTextToText": MODEL_REFERENCE, **(kwargs.get("auto_map") or {})}
        kwargs.setdefault("custom_pipelines", {PIPELINE_TASK: PIPELINE_SPEC})
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)


__all__ = ["CACHE_NAME", "TRANSFORMERS_REQUIREMENT", "ShowAttendTellConfig"]
