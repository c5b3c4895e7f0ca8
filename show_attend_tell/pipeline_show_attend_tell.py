"""The one inference path from images to captions with per-word attention, and the custom `transformers` pipeline.

    images --processor--> pixel_values --model.generate(output_attentions=True)--> sequences, attention_maps
           --captions_from_generation--> [Caption(text, words, attention on the (height, width) grid, image)]

`caption_images` runs these steps in batches (`caption_batch` runs one batch, of pixels or of cached region
features); the pipeline (`pipeline(model=DIR, trust_remote_code=True)`) runs the same steps split into transformers'
preprocess / forward / postprocess. The CLI, the Space, the endpoint handler, evaluation, validation during training
and the attention figures all go through `caption_images` or `caption_batch`. `captions_from_generation` cuts the
captions with the model's end-of-caption rule (`caption_lengths`, in the configuration file: the tokens before the first
end-of-sequence token); special tokens are dropped, and every kept token is one word with one attention map.

transformers 5 removed the built-in "image-to-text" pipeline; saved Show-Attend-Tell folders register this class under
that task name in `config.custom_pipelines` (set by the configuration). This file imports only the configuration, which
imports no other file of the folder, so that a saved folder runs it under every supported transformers release.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm.auto import tqdm
from transformers import Pipeline

from .configuration_show_attend_tell import caption_lengths


@dataclass
class Caption:
    """A generated caption with the attention of each of its words.

    Args:
        text: the caption as clean text.
        words: the caption's words, one per generated token (special tokens and the end token left out).
        attention: `(len(words), grid_height, grid_width)` float32 attention weights on the model's region grid
            (`config.grid_size`, row 0 at the top of the photo); each map sums to 1. The image processor resizes the
            whole photo without cropping, so the grid covers the whole photo whatever its aspect ratio.
        image: the photo that was captioned (RGB, full resolution), when the caller passed images.
    """

    text: str
    words: list[str]
    attention: np.ndarray
    image: Image.Image | None = None

    @property
    def grid_size(self) -> tuple[int, int]:
        """`(height, width)` of the region grid."""
        return tuple(self.attention.shape[1:])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: `generated_text`, `words`, `attention` (nested lists) and `grid_size`."""
        return {
            "generated_text": self.text,
            "words": self.words,
            "attention": self.attention.round(6).tolist(),
            "grid_size": list(self.grid_size),
        }


def generate_with_attention(model: Any, pixel_values: torch.Tensor | None = None, **generate_kwargs) -> Any:
    """`model.generate()` with `attention_maps`: `sequences (rows, 1 + tokens)` and `attention_maps
    (rows, tokens, num_regions)`, `num_return_sequences` rows per image. `encoder_outputs` (cached features) may be
    passed instead of `pixel_values`.

    Decoding settings that are `None` (a flag not given) are left out, so the model's saved `generation_config`
    supplies them: the one rule for decoding defaults."""
    generate_kwargs = {name: value for name, value in generate_kwargs.items() if value is not None}
    if pixel_values is not None:
        pixel_values = pixel_values.to(model.device, model.dtype)
    return model.generate(pixel_values, output_attentions=True, return_dict_in_generate=True, **generate_kwargs)


def captions_from_generation(
    processor: Any,
    sequences: torch.Tensor,
    attention_maps: torch.Tensor,
    grid_size: Sequence[int],
    eos_token_id: int | Sequence[int] | None,
    images: Sequence[Image.Image | None] | None = None,
) -> list[Caption]:
    """One `Caption` per generated sequence: the tokens after the start token up to the first `eos_token_id`, special
    tokens dropped; each kept token is a word with its attention map reshaped to `grid_size = (height, width)`.

    `images`: the captioned photos, one per sequence (or `None`)."""
    height, width = grid_size
    if attention_maps.shape[-1] != height * width:
        raise ValueError(
            f"attention maps have {attention_maps.shape[-1]} regions but the model's grid_size {list(grid_size)} has "
            f"{height * width}: pass pixel_values made by the model's processor (config.image_size)"
        )
    tokenizer = processor.tokenizer
    special = set(tokenizer.all_special_ids)
    maps = attention_maps.float().cpu().numpy()  # (rows, tokens, num_regions)
    generated = sequences[:, 1:]  # sequences start with the decoder start token
    captions = []
    for row, (token_ids, length) in enumerate(
        zip(generated.tolist(), caption_lengths(generated, eos_token_id).tolist(), strict=True)
    ):
        steps = [step for step, token_id in enumerate(token_ids[:length]) if token_id not in special and token_id >= 0]
        kept = [token_ids[step] for step in steps]
        words = [tokenizer.decode([token_id]).strip() for token_id in kept]
        attention = maps[row, steps].reshape(len(steps), height, width)
        image = images[row] if images is not None else None
        captions.append(Caption(processor.decode(kept), words, attention, image))
    return captions


def caption_batch(
    model: Any,
    processor: Any,
    *,
    pixel_values: torch.Tensor | None = None,
    encoder_outputs: Any = None,
    images: Sequence[Image.Image] | None = None,
    **generate_kwargs,
) -> list[Caption]:
    """Caption one batch given as `pixel_values` (from the processor) or `encoder_outputs` (cached region features):
    one `generate()` call, then `captions_from_generation`. `images`: the batch's photos, kept in the captions."""
    outputs = generate_with_attention(model, pixel_values, encoder_outputs=encoder_outputs, **generate_kwargs)
    eos_token_id = generate_kwargs.get("eos_token_id")
    eos_token_id = model.generation_config.eos_token_id if eos_token_id is None else eos_token_id
    rows = None
    if images is not None:
        copies = outputs.sequences.shape[0] // len(images)  # num_return_sequences
        rows = [image for image in images for _ in range(copies)]
    return captions_from_generation(
        processor, outputs.sequences, outputs.attention_maps, model.config.grid_size, eos_token_id, rows
    )


def caption_images(
    model: Any,
    processor: Any,
    images: Sequence[Any],
    *,
    batch_size: int = 16,
    progress: bool = False,
    timeout: float = 10.0,
    **generate_kwargs,
) -> list[Caption]:
    """Caption `images` in batches, with every word's attention map on the model's region grid.

    Args:
        model: a `ShowAttendTellForConditionalGeneration`, or a saved folder's remote-code copy of it.
        processor: its `ShowAttendTellProcessor`.
        images: paths, URLs, bytes, base64 strings, arrays or PIL images (anything the processor reads; `timeout` in
            seconds for URLs).
        batch_size: images per `generate()` call.
        progress: show a progress bar.
        generate_kwargs: decoding settings for `model.generate()` (`num_beams`, `max_new_tokens`, ...); the model's
            `generation_config` supplies the rest (and those given as `None`).

    Returns:
        One `Caption` per returned sequence (`num_return_sequences` per image, in order), holding its photo.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size: expected a positive integer, got {batch_size}")
    if len(images) == 0:
        raise ValueError("images: empty list; pass at least one image")
    captions: list[Caption] = []
    with tqdm(total=len(images), desc="Captioning", unit="img", disable=not progress) as bar:
        for start in range(0, len(images), batch_size):
            photos = [processor.load_image(image, timeout) for image in images[start : start + batch_size]]
            pixel_values = processor(images=photos)["pixel_values"]
            captions += caption_batch(model, processor, pixel_values=pixel_values, images=photos, **generate_kwargs)
            bar.update(len(photos))
    return captions


class ShowAttendTellCaptioningPipeline(Pipeline):
    """Captions images (paths, URLs, bytes, base64 strings, arrays or PIL images).

    Returns `[{"generated_text": ...}]` per image (one entry per returned sequence). With `return_attention=True`, each
    entry also has `words`, `attention` (`(words, grid_height, grid_width)` nested lists) and `grid_size`.
    Keyword arguments of the call other than `timeout` and `return_attention` go to `model.generate()` (`num_beams`,
    `max_new_tokens`, ...); the model's `generation_config` supplies the rest.
    """

    _load_processor = True
    _load_image_processor = False
    _load_tokenizer = False
    _load_feature_extractor = False

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.processor.check_model_config(self.model.config)  # one folder's model with another's tokenizer

    def __call__(self, images: Any, **kwargs):
        if isinstance(images, (list, tuple)) and not images:
            raise ValueError("images: empty list; pass at least one image")
        return super().__call__(images, **kwargs)

    def _sanitize_parameters(
        self, timeout: float | None = None, return_attention: bool | None = None, **generate_kwargs
    ):
        preprocess_params = {"timeout": timeout} if timeout is not None else {}
        postprocess_params = {"eos_token_id": generate_kwargs.get("eos_token_id")}
        if return_attention is not None:
            postprocess_params["return_attention"] = return_attention
        return preprocess_params, {"generate_kwargs": generate_kwargs}, postprocess_params

    def preprocess(self, image: Any, timeout: float = 10.0) -> dict:
        return {"pixel_values": self.processor(images=image, timeout=timeout)["pixel_values"]}

    def _forward(self, model_inputs: dict, generate_kwargs: dict | None = None) -> dict:
        outputs = generate_with_attention(self.model, model_inputs["pixel_values"], **(generate_kwargs or {}))
        images = model_inputs["pixel_values"].shape[0]
        # (images, copies, ...): transformers' batching splits the outputs by image.
        return {
            "sequences": outputs.sequences.view(images, -1, outputs.sequences.shape[-1]),
            "attention_maps": outputs.attention_maps.view(images, -1, *outputs.attention_maps.shape[1:]),
        }

    def postprocess(
        self, model_outputs: dict, eos_token_id: int | list[int] | None = None, return_attention: bool = False
    ) -> list[dict[str, Any]]:
        captions = captions_from_generation(
            self.processor,
            model_outputs["sequences"][0],  # (copies, 1 + tokens)
            model_outputs["attention_maps"][0],  # (copies, tokens, num_regions)
            self.model.config.grid_size,
            self.model.generation_config.eos_token_id if eos_token_id is None else eos_token_id,
        )
        if return_attention:
            return [caption.to_dict() for caption in captions]
        return [{"generated_text": caption.text} for caption in captions]


__all__ = [
    "Caption",
    "ShowAttendTellCaptioningPipeline",
    "caption_batch",
    "caption_images",
    "captions_from_generation",
    "generate_with_attention",
]
