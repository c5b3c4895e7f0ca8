"""Hugging Face Inference Endpoints handler for a Show-Attend-Tell model folder.

Copied into the model folder on export. It needs only `transformers` and the folder's own remote code (loaded with
`trust_remote_code=True`); the `show_attend_tell` package does not have to be installed.

Request:  {"inputs": <image bytes | base64 string | data URL | http(s) URL | PIL image>, "parameters": {...}}
          `inputs` may also be a list of images. `parameters` go to `model.generate()` (num_beams, max_new_tokens, ...);
          what is not given comes from the folder's `generation_config.json`. `"return_attention": true` asks for
          each word's attention map too.
Response: [{"generated_text": "..."}] with one entry per image (per returned sequence with num_return_sequences);
          with `return_attention`, each entry also has "words", "attention" (one grid_height x grid_width map per
          word) and "grid_size".

Captions come from the folder's own `caption_images` (in its pipeline file), the inference path of the package.

The handler serves the public: it never opens a file of the server (a string is an http(s) URL, a data URL or base64,
nothing else), and every parameter is checked against a type and a range before it reaches `generate()`.
"""

from __future__ import annotations

import math
import sys
from typing import Any

import torch
from transformers import AutoModel, AutoProcessor

MAX_BEAMS = 10
MAX_NEW_TOKENS = 100
MAX_IMAGES = 16
# name: (type, lowest, highest, whether the lowest value itself is allowed); `None`: no bound on that side.
PARAMETERS = {
    "num_beams": (int, 1, MAX_BEAMS, True),
    "max_new_tokens": (int, 1, MAX_NEW_TOKENS, True),
    "min_new_tokens": (int, 0, MAX_NEW_TOKENS, True),
    "num_return_sequences": (int, 1, MAX_BEAMS, True),
    "no_repeat_ngram_size": (int, 0, MAX_NEW_TOKENS, True),
    "top_k": (int, 0, None, True),
    "length_penalty": (float, -10.0, 10.0, True),
    "repetition_penalty": (float, 0.0, 10.0, False),
    "temperature": (float, 0.0, 100.0, False),
    "top_p": (float, 0.0, 1.0, False),
    "do_sample": (bool, None, None, True),
    "early_stopping": (bool, None, None, True),
    "return_attention": (bool, None, None, True),  # not a generate() argument: the response format
}
KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false"}


class EndpointHandler:
    def __init__(self, path: str = "") -> None:
        self.model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
        self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
        self.processor.check_model_config(self.model.config)
        # The folder's processing module (loaded as remote code) reads bytes, base64, URLs and PIL images; its pipeline
        # module holds the inference path.
        processing = sys.modules[type(self.processor).__module__]
        self._load_image, self._decode_base64 = processing.load_image, processing.decode_base64
        self._caption_images = sys.modules[processing.ShowAttendTellCaptioningPipeline.__module__].caption_images

    def __call__(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        if not isinstance(data, dict):
            raise ValueError(f"Request body must be a JSON object with 'inputs', got {type(data).__name__}")
        if "inputs" not in data:
            raise ValueError(f"Request is missing 'inputs' (an image as bytes, base64 or URL); got keys {sorted(data)}")
        inputs = data["inputs"]
        images = inputs if isinstance(inputs, list) else [inputs]
        if not images:
            raise ValueError("'inputs' is an empty list: send at least one image")
        if len(images) > MAX_IMAGES:
            raise ValueError(f"'inputs' has {len(images)} images; at most {MAX_IMAGES} per request")
        generate_kwargs = self._check_parameters(data.get("parameters") or {}, self.model.generation_config)
        return_attention = generate_kwargs.pop("return_attention", False)
        pil_images = []
        for index, image in enumerate(images):
            where = "inputs" if not isinstance(inputs, list) else f"inputs[{index}]"
            try:
                pil_images.append(self._load_image(self._network_image(image)))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        with torch.inference_mode():
            captions = self._caption_images(
                self.model, self.processor, pil_images, batch_size=MAX_IMAGES, **generate_kwargs
            )
        if return_attention:
            return [caption.to_dict() for caption in captions]
        return [{"generated_text": caption.text} for caption in captions]

    def _network_image(self, image: Any) -> Any:
        """What a request may carry: bytes, a PIL image, or a string that is an http(s) URL, a data URL or base64.
        Any other string is refused with the same message whether or not a file of that name exists here."""
        if isinstance(image, (bytes, bytearray)) or hasattr(image, "convert"):
            return image
        if not isinstance(image, str):
            raise ValueError(f"expected image bytes, a base64 string or an http(s) URL, got {type(image).__name__}")
        if image.startswith(("http://", "https://", "data:image/")):
            return image
        data = self._decode_base64(image)
        if data is None:
            raise ValueError(
                "a string must be an http(s) URL, a data URL or base64 image data (file paths are not accepted), "
                f"got {len(image)} characters that are none of these"
            )
        return data

    @staticmethod
    def _check_parameters(parameters: Any, defaults: Any) -> dict[str, Any]:
        """The request's parameters, checked; `defaults` (the generation config) supplies what is not given."""
        if not isinstance(parameters, dict):
            raise ValueError(f"'parameters' must be an object of generate() arguments, got {type(parameters).__name__}")
        unknown = sorted(set(parameters) - set(PARAMETERS))
        if unknown:
            raise ValueError(f"Unsupported parameters {unknown}; allowed: {sorted(PARAMETERS)}")
        checked = {}
        for key, value in parameters.items():
            kind, low, high, low_allowed = PARAMETERS[key]
            where = f"parameters[{key!r}]"
            if kind is bool:
                if not isinstance(value, bool):
                    raise ValueError(f"{where} must be true or false, got {value!r}")
                checked[key] = value
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{where} must be {KIND_NAMES[kind]}, got {value!r}")
            if kind is int and value != int(value):
                raise ValueError(f"{where} must be an integer, got {value!r}")
            value = kind(value)
            too_low = low is not None and (value < low or (value == low and not low_allowed))
            if too_low or (high is not None and value > high):
                bounds = f"at least {low}" if low_allowed else f"more than {low}"
                bounds += "" if high is None else f" and at most {high}"
                raise ValueError(f"{where} must be {bounds}, got {value}")
            checked[key] = value
        sequences = checked.get("num_return_sequences", defaults.num_return_sequences or 1)
        beams = checked.get("num_beams", defaults.num_beams or 1)
        if sequences > beams and not checked.get("do_sample"):
            raise ValueError(f"parameters['num_return_sequences']={sequences} needs num_beams >= that value")
        if checked.get("min_new_tokens", 0) > checked.get("max_new_tokens", defaults.max_new_tokens or MAX_NEW_TOKENS):
            raise ValueError("parameters['min_new_tokens'] must not exceed parameters['max_new_tokens']")
        return checked
