"""The one inference path from images to captions with per-word attention, and the custom `transformers` pipeline.

    images --processor--> pixel_values --model.generate(output_attentions=True)--> sequences, attention_maps
           --captions_from_generation--> [Caption(text, words, attention on the (height, width) grid, image)]

`caption_images` runs these steps in batches (`caption_batch` runs one batch, of pixels or of cached region
features); the pipeline (`pipeline(model=DIR, trust_remote_code=True)`, or `ShowAttendTellCaptioningPipeline.
from_pretrained(DIR)`) runs the same steps split into transformers' preprocess / forward / postprocess. The CLI, the
Space, evaluation, validation during training and the attention figures go through `caption_images` or
`caption_batch`, the endpoint handler through the pipeline. `captions_from_generation` cuts the captions with the
model's end-of-caption rule (`caption_lengths`, in the configuration file: the tokens before the first
end-of-sequence token); special tokens are dropped, and every kept token is one word with one attention map.

`load_captioner` is the one rule for opening a model folder: a damaged one (truncated or missing weights, missing
processor files, a config that is not a Show-Attend-Tell config) is a `ModelFolderError` of one line. The CLI (`caption`
and `export-onnx`), the export and push commands, evaluation, training's `--model_name_or_path`, the pipeline's
`from_pretrained` and the endpoint handler load through it.

transformers 5 removed the built-in "image-to-text" pipeline; saved Show-Attend-Tell folders register this class under
that task name in `config.custom_pipelines` (set by the configuration). This file imports only the configuration, which
imports no other file of the folder, so that a saved folder runs it under every supported transformers release.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from tqdm.auto import tqdm
from transformers import AutoConfig, AutoModel, AutoProcessor, Pipeline

from .configuration_show_attend_tell import ShowAttendTellConfig, caption_lengths

MODEL_TYPE = ShowAttendTellConfig.model_type


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


# --------------------------------------------------------------------------------------------------------------------
# Loading a model folder
# --------------------------------------------------------------------------------------------------------------------


class ModelFolderError(ValueError):
    """A model folder or Hub id that does not hold a loadable Show-Attend-Tell model; the message is one line."""


def _one_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _looks_like_path(name: str) -> bool:
    """Hub ids are `name` or `owner/name`; anything else that does not exist is a missing local folder."""
    return (
        name.startswith((".", "/", "~"))
        or name.endswith(("/", os.sep))
        or name.count("/") > 1
        or (os.sep != "/" and os.sep in name)
    )


def load_captioner(
    model_name_or_path: str | os.PathLike,
    device: str | torch.device | None = None,
    *,
    label: str | None = None,
    trust_remote_code: bool = True,
) -> tuple[Any, Any]:
    """`(model, processor)` from a saved folder or a Hub id, the model in eval mode (on `device` when given).

    Anything that is not a complete Show-Attend-Tell model raises `ModelFolderError` with a one-line message that
    starts with `label` (default: the folder or id): a missing folder, no or a foreign `config.json`, missing or
    truncated weights, weights of another shape, missing processor files, a tokenizer from another folder.
    `trust_remote_code=False` loads the classes registered in this process (the installed library) instead of the
    folder's code."""
    name = str(model_name_or_path)
    label = label or name
    path = Path(name).expanduser()
    local = path.exists()
    if local:
        if not path.is_dir():
            raise ModelFolderError(f"{label}: not a folder (expected a saved model folder with config.json)")
        if not (path / "config.json").is_file():
            raise ModelFolderError(f"{label}: no config.json in this folder, so it is not a saved model")
    elif _looks_like_path(name):
        raise ModelFolderError(f"{label}: model folder not found")
    source = str(path) if local else name  # otherwise a Hub id
    try:
        config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as error:
        if not local:
            raise ModelFolderError(
                f"{label}: could not load this Hub model (offline, private or misspelled? pass a local folder "
                f"instead): {_one_line(error)}"
            ) from None
        raise ModelFolderError(f"{label}: config.json is not a loadable model config: {_one_line(error)}") from None
    if getattr(config, "model_type", None) != MODEL_TYPE:
        model_type = getattr(config, "model_type", "unknown")
        raise ModelFolderError(f"{label}: a {model_type!r} model, not a Show-Attend-Tell model")
    try:
        model = AutoModel.from_pretrained(source, trust_remote_code=trust_remote_code)
        processor = AutoProcessor.from_pretrained(source, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError, SafetensorError) as error:
        where = "folder" if local else "Hub model"
        raise ModelFolderError(f"{label}: incomplete or broken {where}: {_one_line(error)}") from None
    except RuntimeError as error:  # transformers: a weight's shape is not the one config.json implies
        raise ModelFolderError(
            f"{label}: the weights do not fit the model that config.json describes (a weight's shape differs; was "
            f"config.json edited?): {type(error).__name__} from transformers"
        ) from None
    if not hasattr(processor, "check_model_config"):
        raise ModelFolderError(f"{label}: no Show-Attend-Tell processor (image processor + tokenizer) saved")
    try:
        processor.check_model_config(model.config)
    except ValueError as error:
        raise ModelFolderError(f"{label}: {error}") from None
    model = model.eval()
    return (model.to(device) if device is not None else model), processor


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

    @classmethod
    def from_pretrained(
        cls, model_name_or_path: str | os.PathLike, *, trust_remote_code: bool = True, **kwargs
    ) -> ShowAttendTellCaptioningPipeline:
        """The pipeline of a saved folder or Hub id, loaded by `load_captioner`: a damaged folder raises a one-line
        `ModelFolderError` (where `pipeline(model=DIR, trust_remote_code=True)` gives transformers' own errors).
        `kwargs` go to the pipeline (`device`, `batch_size`, ...)."""
        model, processor = load_captioner(model_name_or_path, trust_remote_code=trust_remote_code)
        return cls(model=model, processor=processor, **kwargs)

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
    "ModelFolderError",
    "ShowAttendTellCaptioningPipeline",
    "caption_batch",
    "caption_images",
    "captions_from_generation",
    "generate_with_attention",
    "load_captioner",
]
