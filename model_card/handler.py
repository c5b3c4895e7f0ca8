"""Hugging Face Inference Endpoints handler for a Show-Attend-Tell model folder.

Copied into the model folder on export. It needs only `transformers` and the folder's own remote code (loaded with
`trust_remote_code=True`); the `show_attend_tell` package does not have to be installed.

Request:  {"inputs": <image bytes | base64 string | data URL | http(s) URL | PIL image>, "parameters": {...}}
          `inputs` may also be a list of images. `parameters` go to `model.generate()` (num_beams, max_new_tokens, ...).
Response: [{"generated_text": "..."}] with one entry per image (per returned sequence with num_return_sequences).
"""

from __future__ import annotations

import sys
from typing import Any

import torch
from transformers import AutoModel, AutoProcessor

ALLOWED_PARAMETERS = {
    "num_beams": int,
    "max_new_tokens": int,
    "min_new_tokens": int,
    "length_penalty": float,
    "num_return_sequences": int,
    "no_repeat_ngram_size": int,
    "repetition_penalty": float,
    "do_sample": bool,
    "temperature": float,
    "top_k": int,
    "top_p": float,
    "early_stopping": bool,
}
KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false"}
MAX_BEAMS = 10
MAX_NEW_TOKENS = 100
MAX_IMAGES = 16


class EndpointHandler:
    def __init__(self, path: str = "") -> None:
        self.model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
        self.processor = AutoProcessor.from_pretrained(path, trust_remote_code=True)
        # The folder's processing module (loaded as remote code) reads bytes, base64, URLs and PIL images.
        self._load_image = sys.modules[type(self.processor).__module__].load_image

    def __call__(self, data: dict[str, Any]) -> list[dict[str, str]]:
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
        generate_kwargs = self._check_parameters(data.get("parameters") or {})
        pil_images = []
        for index, image in enumerate(images):
            where = "inputs" if not isinstance(inputs, list) else f"inputs[{index}]"
            if isinstance(image, str) and not image.strip():
                raise ValueError(f"{where}: empty string is not an image")
            if not isinstance(image, (bytes, bytearray, str)) and not hasattr(image, "convert"):
                raise ValueError(f"{where}: expected image bytes, a base64 string or a URL, got {type(image).__name__}")
            try:
                pil_images.append(self._load_image(image))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        pixel_values = self.processor(images=pil_images)["pixel_values"].to(self.model.dtype)
        with torch.inference_mode():
            sequences = self.model.generate(pixel_values, **generate_kwargs)
        return [{"generated_text": text} for text in self.processor.batch_decode(sequences)]

    @staticmethod
    def _check_parameters(parameters: Any) -> dict[str, Any]:
        if not isinstance(parameters, dict):
            raise ValueError(f"'parameters' must be an object of generate() arguments, got {type(parameters).__name__}")
        unknown = sorted(set(parameters) - set(ALLOWED_PARAMETERS))
        if unknown:
            raise ValueError(f"Unsupported parameters {unknown}; allowed: {sorted(ALLOWED_PARAMETERS)}")
        checked = {}
        for key, value in parameters.items():
            kind = ALLOWED_PARAMETERS[key]
            valid = (
                isinstance(value, bool)
                if kind is bool
                else isinstance(value, (int, float)) and not isinstance(value, bool)
            )
            if kind is int and valid and value != int(value):
                valid = False
            if not valid:
                raise ValueError(f"parameters[{key!r}] must be {KIND_NAMES[kind]}, got {value!r}")
            checked[key] = kind(value)
        for key, low, high in (("num_beams", 1, MAX_BEAMS), ("max_new_tokens", 1, MAX_NEW_TOKENS)):
            if key in checked and not low <= checked[key] <= high:
                raise ValueError(f"parameters[{key!r}] must be between {low} and {high}, got {checked[key]}")
        if checked.get("num_return_sequences", 1) > checked.get("num_beams", 1) and not checked.get("do_sample"):
            raise ValueError(
                f"parameters['num_return_sequences']={checked['num_return_sequences']} needs num_beams >= that value"
            )
        return checked
