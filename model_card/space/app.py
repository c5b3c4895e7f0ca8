"""Gradio demo: caption a photo with a Show-Attend-Tell model and show where it looked for every word.

Runs as a Hugging Face Space or locally:

```bash
MODEL_ID=USER/show-attend-tell-coco python model_card/space/app.py     # a Hub repository
MODEL_ID=outputs/sat-coco python model_card/space/app.py                # a local model folder
```

Environment: `MODEL_ID` (Hub id or folder, required), `MODEL_REVISION` (pin a reviewed commit of the remote code),
`EXAMPLE_IMAGE` (a photo path or URL captioned when the page opens).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import AutoModel, AutoProcessor  # noqa: E402

from show_attend_tell.pipeline_show_attend_tell import caption_images  # noqa: E402
from show_attend_tell.visualization import plot_attention  # noqa: E402

MAX_BEAMS = 8
TITLE = "Show, Attend and Tell: image captioning with visual attention"
DESCRIPTION = (
    "Upload a photo: the model writes a caption word by word, and for every word the figure lights up the part of "
    "the photo the model attended to (a coarse grid over the whole photo, not an object detector)."
)


def load_model(model_id: str, revision: str | None = None) -> tuple[Any, Any]:
    """The model and processor of a Hub repository or local folder (remote code, `trust_remote_code=True`)."""
    model = AutoModel.from_pretrained(model_id, trust_remote_code=True, revision=revision).eval()
    processor = AutoProcessor.from_pretrained(model_id, trust_remote_code=True, revision=revision)
    return model, processor


def figure_to_image(figure: Any) -> Image.Image:
    """Render a matplotlib figure (Agg canvas) to a PIL image."""
    figure.canvas.draw()
    return Image.fromarray(np.asarray(figure.canvas.buffer_rgba())).convert("RGB")


def build_demo(model: Any, processor: Any, example_image: str | None = None) -> gr.Blocks:
    """The Blocks app; its `caption` endpoint takes (image, beam size, max words) and returns (caption, figure).
    The sliders start at the model's saved decoding settings (`generation_config.json`)."""
    defaults = model.generation_config
    default_beams, default_words = min(defaults.num_beams or 1, MAX_BEAMS), defaults.max_new_tokens or 20

    def caption(image: Any, num_beams: float, max_new_tokens: float) -> tuple[str, Image.Image | None]:
        if image is None:
            raise gr.Error("Upload a photo first.")
        with torch.inference_mode():
            result = caption_images(
                model, processor, [image], num_beams=int(num_beams), max_new_tokens=int(max_new_tokens)
            )[0]
        if not result.words:
            return result.text, None
        return result.text, figure_to_image(plot_attention(result, columns=4))

    # The example is captioned once here, so the page opens with a caption and figure already shown.
    example_caption, example_figure = (None, None)
    if example_image is not None:
        example_caption, example_figure = caption(example_image, default_beams, default_words)

    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(f"# {TITLE}\n\n{DESCRIPTION}")
        with gr.Row():
            with gr.Column(scale=1):
                image = gr.Image(type="pil", label="Photo", value=example_image)
                num_beams = gr.Slider(1, MAX_BEAMS, value=default_beams, step=1, label="Beam size")
                max_new_tokens = gr.Slider(5, 50, value=default_words, step=1, label="Maximum words")
                button = gr.Button("Caption", variant="primary")
            with gr.Column(scale=2):
                text = gr.Textbox(label="Caption", elem_id="caption", value=example_caption)
                figure = gr.Image(
                    type="pil", label="Attention for each word", elem_id="attention", value=example_figure
                )
        inputs, outputs = [image, num_beams, max_new_tokens], [text, figure]
        button.click(caption, inputs, outputs, api_name="caption")
        image.upload(caption, inputs, outputs, api_visibility="private")
    return demo


def space_model_id() -> str | None:
    """The first entry of `models:` in the README.md next to this file (written by model_card/gradio_space.py)."""
    from huggingface_hub import metadata_load

    readme = Path(__file__).resolve().parent / "README.md"
    models = (metadata_load(readme) or {}).get("models") if readme.is_file() else None
    return models[0] if models and not models[0].startswith("OWNER/") else None


def main() -> None:
    model_id = os.environ.get("MODEL_ID") or space_model_id()
    if not model_id:
        raise SystemExit("Set MODEL_ID to a Show-Attend-Tell Hub repository (USER/NAME) or a local model folder.")
    model, processor = load_model(model_id, os.environ.get("MODEL_REVISION"))
    build_demo(model, processor, os.environ.get("EXAMPLE_IMAGE")).launch()


if __name__ == "__main__":
    main()
