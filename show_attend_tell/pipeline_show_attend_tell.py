"""A custom `transformers` pipeline: `pipeline(model=DIR, trust_remote_code=True)(images)`.

transformers 5 removed the built-in "image-to-text" pipeline; saved Show-Attend-Tell folders register this class
under that task name in `config.custom_pipelines` (set by the configuration, `PIPELINE_SPEC`).
"""

from __future__ import annotations

from typing import Any

from transformers import Pipeline


class ShowAttendTellCaptioningPipeline(Pipeline):
    """Captions images (paths, URLs, bytes or PIL images) and returns `[{"generated_text": ...}]` per image.

    Keyword arguments of the call other than `timeout` go to `model.generate()` (`num_beams`, `max_new_tokens`, ...).
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

    def _sanitize_parameters(self, timeout: float | None = None, **generate_kwargs):
        preprocess_params = {"timeout": timeout} if timeout is not None else {}
        return preprocess_params, {"generate_kwargs": generate_kwargs}, {}

    def preprocess(self, image: Any, timeout: float = 10.0) -> dict:
        pixel_values = self.processor(images=image, timeout=timeout)["pixel_values"]  # the processor loads the image
        return {"pixel_values": pixel_values.to(self.model.dtype)}

    def _forward(self, model_inputs: dict, generate_kwargs: dict | None = None) -> dict:
        return {"sequences": self.model.generate(model_inputs["pixel_values"], **(generate_kwargs or {}))}

    def postprocess(self, model_outputs: dict) -> list[dict[str, str]]:
        return [{"generated_text": text} for text in self.processor.batch_decode(model_outputs["sequences"])]


__all__ = ["ShowAttendTellCaptioningPipeline"]
