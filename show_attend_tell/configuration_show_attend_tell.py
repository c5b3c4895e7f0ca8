"""Configuration of the Show, Attend and Tell captioner (Xu et al. 2015)."""

from __future__ import annotations

from functools import lru_cache

import timm
import torch
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

# transformers 5.0 copies only a remote-code file's direct relative imports out of a local folder, so every file that a
# file of a saved folder imports is one of its own direct imports: the modeling and pipeline files import only this
# configuration, the processing file the pipeline (so that `processor.save_pretrained` copies it) and this
# configuration, and the configuration imports none of them: it names the classes by reference (`auto_map`,
# `custom_pipelines`).

# transformers 5.24 renamed the decoding state `past_key_values` to `cache`: in forward() keywords, in the field of
# model outputs that generate() reads, and in the keyword that generate() passes back and beam search reorders.
CACHE_NAME = "cache" if TRANSFORMERS_VERSION.release >= (5, 24) else "past_key_values"

# --------------------------------------------------------------------------------------------------------------------
# The end of a caption: one rule for the model's attention maps and the pipeline's captions (the ONNX runtime and the
# web page carry it in numpy and JavaScript, tested equal to this one)
# --------------------------------------------------------------------------------------------------------------------


def caption_lengths(generated: torch.LongTensor, eos_token_id: int | list[int] | torch.Tensor | None) -> torch.Tensor:
    """How many tokens of each generated sequence are its caption: those before its first end token.

    `generated` `(rows, tokens)`: generated tokens, without the decoder start token. `eos_token_id`: the end token(s);
    `None` ends no caption. Returns `(rows,)` int64: the index of each row's first end token, or `tokens` for a row
    that did not end. The end token itself is not a word of the caption, but its step still has an attention map."""
    if eos_token_id is None:
        return torch.full(generated.shape[:1], generated.shape[1], dtype=torch.long, device=generated.device)
    ended = torch.isin(generated, torch.as_tensor(eos_token_id, device=generated.device))
    return (~ended).long().cumprod(dim=1).sum(dim=1)  # the run of tokens before the first end token


# --------------------------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------------------------

MODEL_REFERENCE = "modeling_show_attend_tell.ShowAttendTellForConditionalGeneration"
ATTENTION_TYPES = ("soft", "hard")  # paper sections 4.2 and 4.1
PIPELINE_TASK = "image-to-text"
PIPELINE_SPEC = {
    "impl": "pipeline_show_attend_tell.ShowAttendTellCaptioningPipeline",
    "pt": ["AutoModelForImageTextToText"],
    "type": "image",
}


POSITION_EMBEDDINGS = ("none", "learned", "sinusoidal")


@lru_cache(maxsize=32)
def backbone_feature_info(backbone: str, image_size: tuple[int, int], feature_index: int = -1) -> tuple[int, int, int]:
    """`(channels, grid_height, grid_width)` of the feature map `feature_index` of timm's `backbone` on images of
    `image_size = (height, width)`: the backbone is built and run on PyTorch's meta device (shapes only, no weights,
    no compute), so the grid is the backbone's real one, whatever its stride and padding rules."""
    with torch.device("meta"):
        network = timm.create_model(backbone, pretrained=False, features_only=True, out_indices=(feature_index,))
        feature_map = network(torch.empty(1, 3, *image_size))[-1]  # (1, channels, grid_height, grid_width)
    return tuple(feature_map.shape[1:])


class ShowAttendTellConfig(PretrainedConfig):
    r"""
    Configuration for [`ShowAttendTellForConditionalGeneration`]: a timm CNN encoder whose last feature map is a
    grid of region vectors, an additive (Bahdanau) soft attention over those regions, and an LSTM decoder that writes
    the caption one word at a time.

    Generation defaults (beam size, maximum length, ...) live in `generation_config.json`, not here.

    Args:
        backbone (`str`, *optional*, defaults to `"tf_efficientnet_lite0"`):
            Name of any timm model that supports `features_only=True`. Its feature map `feature_index` is the region
            grid.
        feature_index (`int`, *optional*, defaults to -1):
            Which of the backbone's feature maps (timm `out_indices`) is the region grid: -1 is the last (stride 32 for
            most CNNs), -2 the one before (stride 16: a grid twice as fine, with fewer channels).
        image_size (`int` or `[height, width]`, *optional*, defaults to 256):
            Size of the image fed to the backbone: an `int` for a square. With a stride-32 backbone, 256 gives an 8x8
            grid and `[192, 320]` a 6x10 grid.
        encoder_dim (`int`, *optional*):
            Channels of the region features. Derived from the backbone when left `None`; checked when given.
        grid_size (`[height, width]`, *optional*):
            The region grid: rows and columns of the backbone's feature map at `image_size`, in the row-major order of
            the attention maps (`num_regions = height * width`). Derived from the backbone when left `None`; checked
            when given. Everything that maps attention to pixels reads it.
        attention_dim (`int`, *optional*, defaults to 512):
            Width of the additive attention's hidden layer.
        embed_dim (`int`, *optional*, defaults to 512):
            Width of the word embeddings.
        decoder_dim (`int`, *optional*, defaults to 512):
            Hidden size of the LSTM decoder.
        dropout (`float`, *optional*, defaults to 0.5):
            Dropout before the output layer.
        position_embedding (`str`, *optional*, defaults to `"none"`):
            A 2-D position embedding added to each region's attention key (its projection `W_a a_i`), so that attention
            can ask for a place as well as for a content: `"none"` (the paper), `"learned"` (a learned row embedding
            plus a learned column embedding) or `"sinusoidal"` (fixed sines and cosines of the row and the column).
        attention_temperature (`float`, *optional*, defaults to 1.0):
            The attention weights are `softmax(scores / attention_temperature)`: below 1 sharper, above 1 flatter.
        alpha_c (`float`, *optional*, defaults to 1.0):
            Weight of the doubly stochastic attention regulariser `mean((1 - sum_t alpha_t)^2)` (paper eq. 14).
        attention_entropy_weight (`float`, *optional*, defaults to 0.0):
            Weight of an attention-sharpening penalty, not in the paper: the mean entropy of the attention weights
            over a caption's steps, divided by `log(num_regions)` (1 for a uniform map, 0 for a single region). 0
            keeps the paper's loss.
        label_smoothing (`float`, *optional*, defaults to 0.0):
            Label smoothing of the word cross-entropy.
        attention_type (`str`, *optional*, defaults to `"soft"`):
            `"soft"`: deterministic soft attention, the context is the `alpha`-weighted mean of the regions (paper
            section 4.2). `"hard"`: stochastic hard attention (section 4.1): in training, each step samples one
            location `s_t ~ Multinoulli(alpha_t)` and the context is that region (times the gate `beta`); the
            REINFORCE part of its gradient is added by the training loss (`training/hard_attention.py`). At test time
            (eval mode, `generate()`) a hard model uses the expected context, like a soft model (see
            `ShowAttendTellForConditionalGeneration.generate`). The weights of both types are the same.
        hard_expected_context_prob (`float`, *optional*, defaults to 0.5):
            Hard attention in training: the probability that a caption uses the expected (soft) context at every step
            instead of sampled locations (the paper's variance-reduction trick, section 4.1, with its value 0.5).
        deep_output (`bool`, *optional*, defaults to `True`):
            Use the deep output layer of paper eq. 7, `L_o(E y_{t-1} + L_h h_t + L_z z_t)`; otherwise a linear layer
            on `h_t`.
        vocab_size (`int`, *optional*, defaults to 1000):
            Number of words in the tokenizer (special tokens included).
        use_cache (`bool`, *optional*, defaults to `True`):
            Whether the model returns its decoding state (the LSTM's hidden and cell state) to continue from, as
            transformers' decoders return their key/value cache. `generate()` relies on it.
        pad_token_id, bos_token_id, eos_token_id, unk_token_id (`int`, *optional*, default to 0, 1, 2, 3):
            Special token ids of the word-level tokenizer. Generation starts from `bos_token_id`
            (`decoder_start_token_id`).
    """

    model_type = "show_attend_tell"

    def __init__(
        self,
        backbone: str = "tf_efficientnet_lite0",
        image_size: int | list[int] = 256,
        encoder_dim: int | None = None,
        grid_size: list[int] | None = None,
        feature_index: int = -1,
        attention_dim: int = 512,
        embed_dim: int = 512,
        decoder_dim: int = 512,
        dropout: float = 0.5,
        alpha_c: float = 1.0,
        attention_entropy_weight: float = 0.0,
        position_embedding: str = "none",
        attention_temperature: float = 1.0,
        label_smoothing: float = 0.0,
        attention_type: str = "soft",
        hard_expected_context_prob: float = 0.5,
        deep_output: bool = True,
        vocab_size: int = 1000,
        use_cache: bool = True,
        pad_token_id: int = 0,
        bos_token_id: int = 1,
        eos_token_id: int = 2,
        unk_token_id: int = 3,
        **kwargs,
    ):
        self.backbone = backbone
        self.image_size = list(image_size) if isinstance(image_size, (list, tuple)) else image_size
        self.feature_index = feature_index
        channels, *grid = backbone_feature_info(backbone, self.image_height_width, feature_index)
        for name, given, derived in (("encoder_dim", encoder_dim, channels), ("grid_size", grid_size, grid)):
            if given is not None and (list(given) if isinstance(given, (list, tuple)) else given) != derived:
                raise ValueError(
                    f"{name}={given} but backbone {backbone!r} (feature map {feature_index}) gives {derived} on "
                    f"images of {self.image_height_width}; leave {name} out to derive it"
                )
        self.encoder_dim = channels
        self.grid_size = grid  # [height, width]
        self.attention_dim = attention_dim
        self.embed_dim = embed_dim
        self.decoder_dim = decoder_dim
        self.dropout = dropout
        self.alpha_c = alpha_c
        if attention_entropy_weight < 0:
            raise ValueError(f"attention_entropy_weight must be >= 0, got {attention_entropy_weight!r}")
        self.attention_entropy_weight = float(attention_entropy_weight)
        if position_embedding not in POSITION_EMBEDDINGS:
            raise ValueError(f"position_embedding must be one of {POSITION_EMBEDDINGS}, got {position_embedding!r}")
        if not attention_temperature > 0:
            raise ValueError(f"attention_temperature must be positive, got {attention_temperature!r}")
        self.position_embedding = position_embedding
        self.attention_temperature = float(attention_temperature)
        self.label_smoothing = label_smoothing
        if attention_type not in ATTENTION_TYPES:
            raise ValueError(f"attention_type must be one of {ATTENTION_TYPES}, got {attention_type!r}")
        if not 0.0 <= hard_expected_context_prob <= 1.0:
            raise ValueError(f"hard_expected_context_prob must be in [0, 1], got {hard_expected_context_prob}")
        self.attention_type = attention_type
        self.hard_expected_context_prob = hard_expected_context_prob
        self.deep_output = deep_output
        self.vocab_size = vocab_size
        self.use_cache = use_cache
        self.unk_token_id = unk_token_id
        kwargs.setdefault("is_encoder_decoder", True)
        kwargs.setdefault("decoder_start_token_id", bos_token_id)
        # Saved folders load with AutoModelForImageTextToText and run as `pipeline(model=DIR, trust_remote_code=True)`
        # (AutoConfig and AutoModel are added by `register_for_auto_class` when the folder is saved).
        kwargs["auto_map"] = {"AutoModelForImageTextToText": MODEL_REFERENCE, **(kwargs.get("auto_map") or {})}
        kwargs.setdefault("custom_pipelines", {PIPELINE_TASK: PIPELINE_SPEC})
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id, **kwargs)

    @property
    def image_height_width(self) -> tuple[int, int]:
        """`image_size` as `(height, width)`."""
        if isinstance(self.image_size, int):
            return self.image_size, self.image_size
        height, width = self.image_size
        return height, width

    @property
    def num_regions(self) -> int:
        return self.grid_size[0] * self.grid_size[1]


__all__ = [
    "ATTENTION_TYPES",
    "CACHE_NAME",
    "POSITION_EMBEDDINGS",
    "TRANSFORMERS_REQUIREMENT",
    "ShowAttendTellConfig",
    "backbone_feature_info",
    "caption_lengths",
]
