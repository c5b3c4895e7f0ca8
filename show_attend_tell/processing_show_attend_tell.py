"""Image loading, image processor setup, word-level tokenizer builder and the Show-Attend-Tell processor."""

from __future__ import annotations

import base64
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
from tokenizers import Regex, Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BatchFeature, PreTrainedTokenizerFast, ProcessorMixin, ViTImageProcessor

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<bos>", "eos_token": "<eos>", "unk_token": "<unk>"}
MIN_IMAGE_SIDE = 8
MAX_IMAGE_PIXELS = 100_000_000  # larger images are treated as decompression bombs
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4}){8,}(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")

# --------------------------------------------------------------------------------------------------------------------
# Images
# --------------------------------------------------------------------------------------------------------------------


def _describe(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        text = str(source)
        return text if len(text) <= 120 else f"{text[:60]}...({len(text)} characters)"
    return f"<{type(source).__name__}>"


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, ...) to 8-bit RGB without garbling the colours."""
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        array = np.asarray(image, dtype=np.float64)
        high = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(array / high * 255.0, 0, 255).round().astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


def load_image(source: Any, timeout: float = 10.0) -> Image.Image:
    """Open an image from a path, URL, bytes, base64 string, numpy array or PIL image as 8-bit RGB.

    Raises `ValueError` naming the input for missing files, non-images, corrupt data, images smaller than
    8x8 pixels and images over 100 megapixels (decompression bombs).
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
            return Image.fromarray(source)
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
            if source.startswith("data:image/") or (_BASE64.fullmatch(source) and not os.path.exists(source)):
                try:
                    return Image.open(io.BytesIO(base64.b64decode(source.split(",")[-1], validate=True)))
                except ValueError:
                    raise ValueError(f"{source[:40]}... is neither an existing file nor base64 image data") from None
            if os.path.isdir(source):
                raise ValueError(f"{source} is a directory, not an image file")
            return Image.open(source)
        raise ValueError(f"Cannot read an image from an object of type {type(source).__name__}")
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit


def build_image_processor(backbone: str, image_size: int) -> ViTImageProcessor:
    """A standard transformers image processor for `backbone`: bicubic resize of the whole photo to a square
    `image_size` (no crop, so attention maps cover the full photo) and the backbone's pretrained normalisation."""
    pretrained_cfg = timm.models.get_pretrained_cfg(backbone)
    mean = list(pretrained_cfg.mean) if pretrained_cfg is not None else [0.485, 0.456, 0.406]
    std = list(pretrained_cfg.std) if pretrained_cfg is not None else [0.229, 0.224, 0.225]
    return ViTImageProcessor(
        do_resize=True,
        size={"height": image_size, "width": image_size},
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


def build_tokenizer(
    captions: Iterable[str], min_frequency: int = 1, max_vocab_size: int | None = None
) -> PreTrainedTokenizerFast:
    """Build a word-level tokenizer from training captions.

    Text is unicode-normalised (NFKC) and lower-cased, punctuation splits and is dropped, words seen fewer than
    `min_frequency` times map to `<unk>`. Encoding appends `<eos>`; the decoder starts from `<bos>`.
    """
    captions = validate_captions(list(captions), where="build_tokenizer captions")
    tokenizer = Tokenizer(models.WordLevel(unk_token=SPECIAL_TOKENS["unk_token"]))
    tokenizer.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace(Regex(r"[^\w\s]|_"), " ")]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    special = [SPECIAL_TOKENS[key] for key in ("pad_token", "bos_token", "eos_token", "unk_token")]
    trainer = trainers.WordLevelTrainer(
        vocab_size=max_vocab_size or 10_000_000, min_frequency=min_frequency, special_tokens=special
    )
    tokenizer.train_from_iterator(captions, trainer=trainer)
    eos = SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"$A {eos}", special_tokens=[(eos, tokenizer.token_to_id(eos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, model_max_length=128, **SPECIAL_TOKENS)


# --------------------------------------------------------------------------------------------------------------------
# Processor
# --------------------------------------------------------------------------------------------------------------------


class ShowAttendTellProcessor(ProcessorMixin):
    """Turns images into `pixel_values`, captions into `labels` (padding = -100), and generated ids into text."""

    def __init__(self, image_processor, tokenizer):
        super().__init__(image_processor, tokenizer)

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
            pixel_values = self.image_processor([load_image(image, timeout) for image in images], return_tensors="pt")
            data["pixel_values"] = pixel_values["pixel_values"]
        if text is not None:
            data["labels"] = self.encode_captions(validate_captions(text, where="text"), max_length=max_length)
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
    "ShowAttendTellProcessor",
    "build_image_processor",
    "build_tokenizer",
    "load_image",
    "validate_captions",
]
