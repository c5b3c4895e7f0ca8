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

Captions come from the folder's own custom pipeline (the class its config registers in `custom_pipelines`, loaded from
the folder's pipeline file as remote code), built by its `from_pretrained`: a damaged folder (truncated or missing
weights, missing processor files, a config that is not a Show-Attend-Tell config) fails at start with the one-line
message of `show-attend-tell caption`.

The handler serves the public: it never opens a file of the server (a string is an http(s) URL, a data URL or base64,
nothing else), and every parameter is checked against a type and a range before it reaches `generate()`.
"""

from __future__ import annotations

import math
from typing import Any

from transformers.dynamic_module_utils import get_class_from_dynamic_module

# The custom pipeline that saved configs register (`config.custom_pipelines`), in the folder's pipeline file.
PIPELINE_CLASS = "pipeline_show_attend_tell.ShowAttendTellCaptioningPipeline"

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
        # Loaded from the folder (remote code) even when its config.json is not ours, so that such a folder too gets
        # the pipeline's one-line message.
        self.captioner = get_class_from_dynamic_module(PIPELINE_CLASS, path).from_pretrained(path)
        self.model, self.processor = self.captioner.model, self.captioner.processor

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
                pil_images.append(self.processor.load_image(self._network_image(image)))
            except ValueError as error:
                raise ValueError(f"{where}: {error}") from None
        # Only PIL images reach the pipeline: nothing in a request names a file of this server.
        outputs = self.captioner(
            pil_images, batch_size=len(pil_images), return_attention=return_attention, **generate_kwargs
        )
        return [entry for per_image in outputs for entry in per_image]  # num_return_sequences entries per image

    def _network_image(self, image: Any) -> Any:
        """What a request may carry: bytes, a PIL image, or a string that is an http(s) URL, a data URL or base64.
        Any other string is refused with the same message whether or not a file of that name exists here."""
        if isinstance(image, (bytes, bytearray)) or hasattr(image, "convert"):
            return image
        if not isinstance(image, str):
            raise ValueError(f"expected image bytes, a base64 string or an http(s) URL, got {type(image).__name__}")
        if image.startswith(("http://", "https://", "data:image/")):
            return image
        data = self.processor.decode_base64(image)
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
