"""Image loading, image processor setup, word-level tokenizer builder and the Show-Attend-Tell processor."""

from __future__ import annotations

import base64
import binascii
import io
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import timm
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BatchFeature, PreTrainedTokenizerFast, ProcessorMixin, ViTImageProcessor

# Imported so that `processor.save_pretrained` copies them: the pipeline that a saved config's `custom_pipelines` names
# runs the model with this processor, and the configuration that the pipeline imports (transformers 5.0 copies only
# the direct relative imports of the file it loads).
from .configuration_show_attend_tell import ShowAttendTellConfig  # noqa: F401
from .pipeline_show_attend_tell import ShowAttendTellCaptioningPipeline  # noqa: F401

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}
MIN_IMAGE_SIDE = 8
MAX_IMAGE_PIXELS = 100_000_000  # larger images are treated as decompression bombs
# Base64 in the standard or the URL-safe alphabet, with or without padding (line breaks are removed first).
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{32,}={0,2}")

# --------------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------------


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        return text if len(text) <= 120 else f"{text[:60]}...({len(text)} characters)"
    return f"<{type(source).__name__}>"


def _array_to_image(array: np.ndarray) -> Image.Image:
    """An 8-bit PIL image from an HxW, HxWxC or CxHxW array (C = 1, 3 or 4).

    Value ranges: floats in 0..1 or 0..255; uint16 in 0..65535; other integers in 0..255, or 0..65535 when larger
    values occur; booleans as black and white.
    """
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise ValueError(f"image array: expected numbers, got dtype {getattr(array, 'dtype', type(array).__name__)}")
    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # CxHxW -> HxWxC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)) or array.size == 0:
        raise ValueError(f"image array of shape {array.shape}: expected HxW, HxWxC or CxHxW with C = 1, 3 or 4")
    values = array.astype(np.float64)
    if not np.isfinite(values).all():
        raise ValueError("image array holds NaN or infinite values")
    low, high = values.min(), values.max()
    if low < 0:
        raise ValueError(f"image array values must not be negative, got {low:g}")
    if array.dtype.kind == "b":
        scale = 255.0
    elif array.dtype.kind == "f":
        scale = 255.0 if high <= 1.0 else 1.0
    else:
        scale = 255.0 / 65535.0 if array.dtype == np.uint16 or high > 255 else 1.0
    if high * scale > 255.0 + 1e-6:
        raise ValueError(f"image array values up to {high:g}: expected floats in 0..1 or 0..255, integers up to 65535")
    return Image.fromarray(np.round(values * scale).astype(np.uint8))  # mode L, RGB or RGBA


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, ...) to 8-bit RGB without garbling the colours."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16/32-bit and float: the array value rules
        array = np.asarray(image)
        image = _array_to_image(array.astype(np.uint16) if image.mode.startswith("I;16") else array)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def load_image(source: Any, timeout: float = 10.0) -> Image.Image:
    """Open an image from a path, URL, bytes, base64 string (or data URL), numpy array or PIL image as 8-bit RGB.

    Arrays may be HxW, HxWxC or CxHxW (C = 1, 3 or 4), floats in 0..1 or 0..255 or integers (`_array_to_image`);
    PIL float and 16/32-bit images follow the same rules. Base64 may use the URL-safe alphabet and line breaks.

    Raises `ValueError` naming the input for missing files, non-images, corrupt data, arrays of another form, images
    smaller than 8x8 pixels and images over 100 megapixels (decompression bombs).
    """
    name = _describe(source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = _open(source, timeout)
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(f"Image {name} is too large to decode safely ({error})") from None
    except FileNotFoundError:
        raise ValueError(f"Image file not found: {name}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise ValueError(f"{name} is not a readable image ({type(error).__name__}: {error})") from None
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise ValueError(f"Image {name} is too large: {width}x{height} pixels (limit {MAX_IMAGE_PIXELS:,})")
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ValueError(
            f"Image {name} is too small: {width}x{height} pixels (need at least {MIN_IMAGE_SIDE} per side)"
        )
    return _to_rgb(image)


def _open(source: Any, timeout: float) -> Image.Image:
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        if isinstance(source, Image.Image):
            return source
        if isinstance(source, np.ndarray):
            return _array_to_image(source)
        if isinstance(source, torch.Tensor):
            raise ValueError("Pass images as PIL images, numpy arrays, paths or bytes, not torch tensors")
        if isinstance(source, (bytes, bytearray)):
            return Image.open(io.BytesIO(source))
        if isinstance(source, os.PathLike):
            return Image.open(source)
        if isinstance(source, str):
            if source.startswith(("http://", "https://")):
                import requests

                try:
                    response = requests.get(source, timeout=timeout)
                    response.raise_for_status()
                except requests.RequestException as error:
                    raise ValueError(f"Could not download image {source}: {error}") from None
                return Image.open(io.BytesIO(response.content))
            if source.startswith("data:image/"):
                data = decode_base64(source.partition(",")[2])
                if data is None:
                    raise ValueError("data URL: the part after the comma is not base64 image data")
                return Image.open(io.BytesIO(data))
            if os.path.isdir(source):
                raise ValueError(f"{_describe(source)} is a directory, not an image file")
            if os.path.exists(source):
                return Image.open(source)
            data = decode_base64(source)
            if data is None:
                raise FileNotFoundError(source)
            return Image.open(io.BytesIO(data))
        raise ValueError(f"Cannot read an image from an object of type {type(source).__name__}")
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def decode_base64(text: str) -> bytes | None:
    """The bytes that `text` encodes in base64 (standard or URL-safe alphabet; line breaks and missing padding
    allowed), or `None` when `text` is not base64."""
    compact = "".join(text.split())
    if not _BASE64.fullmatch(compact):
        return None
    url_safe = "-" in compact or "_" in compact
    try:
        padded = compact + "=" * (-len(compact) % 4)
        return base64.b64decode(padded, altchars=b"-_" if url_safe else None, validate=True)
    except (binascii.Error, ValueError):
        return None


def build_image_processor(backbone: str, image_size: int | Sequence[int]) -> ViTImageProcessor:
    """A standard transformers image processor for `backbone`: bicubic resize of the whole photo to `image_size` (an
    `int` for a square, or `(height, width)`; no crop, so attention maps cover the full photo) and the backbone's
    pretrained normalisation."""
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    pretrained_cfg = timm.models.get_pretrained_cfg(backbone)
    mean = list(pretrained_cfg.mean) if pretrained_cfg is not None else [0.485, 0.456, 0.406]
    std = list(pretrained_cfg.std) if pretrained_cfg is not None else [0.229, 0.224, 0.225]
    return ViTImageProcessor(
        do_resize=True,
        size={"height": height, "width": width},
        resample=Image.Resampling.BICUBIC,
        do_normalize=True,
        image_mean=mean,
        image_std=std,
    )


# --------------------------------------------------------------------------------------------------------------------
# Text
# --------------------------------------------------------------------------------------------------------------------


def validate_captions(captions: Any, where: str = "captions") -> list[str]:
    """Return `captions` as a list of non-empty strings, or raise `ValueError` naming the bad entry."""
    if isinstance(captions, str):
        captions = [captions]
    if not isinstance(captions, Sequence) or len(captions) == 0:
        raise ValueError(f"{where}: expected a non-empty list of caption strings, got {captions!r}")
    for index, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise ValueError(f"{where}[{index}]: caption must be a string, got {type(caption).__name__} {caption!r}")
        if not caption.strip():
            raise ValueError(f"{where}[{index}]: caption is empty")
    return list(captions)


SEGMENTATIONS = ("word", "character")
_SPACE = "\u2581"  # stands for a space between words in character segmentation ("▁", as in SentencePiece)


def build_tokenizer(
    captions: str | Iterable[str],
    min_frequency: int = 1,
    max_vocab_size: int | None = None,
    segmentation: str = "word",
) -> PreTrainedTokenizerFast:
    """Build a tokenizer from training captions.

    `segmentation="word"` (the default, for languages that separate words with spaces): text is unicode-normalised
    (NFKC) and lower-cased, punctuation and symbols split and are dropped, and each word is a token.
    `segmentation="character"` (for any script, including those written without spaces such as Chinese, Japanese
    or Thai, and for emoji): every character is a token, spaces between words are kept as a token of their own, and
    decoding joins the characters back; punctuation is dropped as in word segmentation.

    Tokens seen fewer than `min_frequency` times map to `<unk>`. Encoding appends `<eos>`; the decoder starts from
    `<bos>`. Raises `ValueError` naming the caption when one has no token left after normalisation (say `"..."`).
    """
    if segmentation not in SEGMENTATIONS:
        raise ValueError(f"segmentation: expected one of {SEGMENTATIONS}, got {segmentation!r}")
    captions = validate_captions(captions if isinstance(captions, str) else list(captions), where="captions")
    tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    if segmentation == "word":
        tokenizer.normalizer = normalizers.Sequence(
            [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace(Regex(r"[^\w\s]|_"), " ")]
        )
        tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    else:
        tokenizer.normalizer = normalizers.Sequence(
            [
                normalizers.NFKC(),
                normalizers.Lowercase(),
                normalizers.Replace(Regex(r"[\p{Cc}\p{Cf}]"), ""),  # control and invisible format characters
                normalizers.Replace(Regex(r"[\p{P}_\s]+"), " "),  # punctuation and runs of white space
                normalizers.Strip(),
                normalizers.Replace(" ", _SPACE),
            ]
        )
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r"."), behavior="isolated")
        tokenizer.decoder = decoders.Sequence([decoders.Fuse(), decoders.Replace(_SPACE, " ")])
    special = [SPECIAL_TOKENS[key] for key in ("pad_token", "bos_token", "eos_token", "unk_token")]
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_vocab_size or 10_000_000, min_frequency=min_frequency, special_tokens=special
    )
    tokenizer.train_from_iterator(captions, trainer=trainer)
    eos = SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, tokenizer.token_to_id(eos))]
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=128, **SPECIAL_TOKENS)
    check_captions_have_tokens(tokenizer, captions, where="captions")
    return tokenizer


def check_captions_have_tokens(tokenizer: PreTrainedTokenizerFast, captions: list[str], where: str) -> None:
    """Raise `ValueError` naming the first caption that the tokenizer turns into no token at all (only punctuation,
    symbols or invisible characters), which would otherwise train or score as an empty caption."""
    encoded = tokenizer(captions, add_special_tokens=False)["input_ids"]
    for index, (caption, ids) in enumerate(zip(captions, encoded, strict=True)):
        if not ids:
            raise _no_tokens_error(f"{where}[{index}]", caption)


def _no_tokens_error(where: str, caption: str) -> ValueError:
    return ValueError(
        f"{where}: caption {caption!r} has no words the tokenizer keeps (it drops punctuation, symbols and invisible "
        "characters); write it in words, or build the tokenizer with character segmentation"
    )


# --------------------------------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------------------------------


class ShowAttendTellProcessor(ProcessorMixin):
    """Turns images into `pixel_values`, captions into `labels` (padding = -100), and generated ids into text."""

    load_image = staticmethod(load_image)  # what `__call__` reads images with, for callers that keep the photos
    decode_base64 = staticmethod(decode_base64)  # for callers that accept base64 strings and nothing else

    def __init__(self, image_processor, tokenizer):
        super().__init__(image_processor, tokenizer)
        missing = [name for name in SPECIAL_TOKENS if getattr(tokenizer, f"{name}_id", None) is None]
        if missing:
            raise ValueError(
                f"tokenizer: {missing} not set (a saved folder needs tokenizer_config.json beside tokenizer.json); "
                f"expected the special tokens {sorted(SPECIAL_TOKENS.values())}"
            )

    def check_model_config(self, config: Any) -> None:
        """Raise `ValueError` when the model's vocabulary is not this tokenizer's (a model and a processor from
        different folders would decode every word id into the wrong word)."""
        if config.vocab_size != len(self.tokenizer):
            raise ValueError(
                f"the tokenizer has {len(self.tokenizer)} tokens but the model's config.vocab_size is "
                f"{config.vocab_size}: load the model and the processor from the same folder"
            )

    def __call__(
        self,
        images: Any = None,
        text: str | list[str] | None = None,
        max_length: int | None = None,
        return_tensors: str = "pt",
        timeout: float = 10.0,
        **kwargs,
    ) -> BatchFeature:
        """`images`: one or a list of paths, URLs, bytes, arrays or PIL images (`load_image`; `timeout` in seconds for
        URLs). `text`: one caption per image."""
        if images is None and text is None:
            raise ValueError("Pass `images`, `text`, or both")
        data = {}
        if images is not None:
            images = images if isinstance(images, (list, tuple)) else [images]
            if not images:
                raise ValueError("images: empty list; pass at least one image")
            pixel_values = self.image_processor([load_image(image, timeout) for image in images], return_tensors="pt")
            data["pixel_values"] = pixel_values["pixel_values"]
        if text is not None:
            captions = validate_captions(text, where="text")
            if images is not None and len(captions) != len(images):
                raise ValueError(f"text: {len(captions)} captions for {len(images)} images; pass one caption per image")
            data["labels"] = self.encode_captions(captions, max_length=max_length)
        return BatchFeature(data=data, tensor_type=return_tensors)

    def encode_captions(self, captions: list[str], max_length: int | None = None) -> torch.LongTensor:
        """Captions -> labels `(batch, steps)`: word ids then `<eos>`, padded with -100."""
        encoded = self.tokenizer(
            captions,
            padding=True,
            truncation=max_length is not None,
            max_length=max_length,
            return_tensors="pt",
            return_attention_mask=True,
        )
        empty = (encoded["attention_mask"].sum(dim=1) <= 1).nonzero().flatten().tolist()  # nothing but <eos>
        if empty:
            raise _no_tokens_error(f"text[{empty[0]}]", captions[empty[0]])
        return encoded["input_ids"].masked_fill(encoded["attention_mask"] == 0, -100)

    def batch_decode(self, sequences, **kwargs) -> list[str]:
        """Generated ids -> clean captions (special tokens and padding removed)."""
        kwargs.setdefault("skip_special_tokens", True)
        if isinstance(sequences, torch.Tensor):
            sequences = sequences.masked_fill(sequences < 0, self.tokenizer.pad_token_id)
        return [" ".join(text.split()) for text in self.tokenizer.batch_decode(sequences, **kwargs)]

    def decode(self, sequence, **kwargs) -> str:
        return self.batch_decode([sequence] if not isinstance(sequence, torch.Tensor) else sequence[None], **kwargs)[0]

    @property
    def model_input_names(self) -> list[str]:
        return ["pixel_values", "labels"]


__all__ = [
    "SEGMENTATIONS",
    "ShowAttendTellProcessor",
    "build_image_processor",
    "build_tokenizer",
    "check_captions_have_tokens",
    "decode_base64",
    "load_image",
    "validate_captions",
]
