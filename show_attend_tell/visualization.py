"""Per-word attention figures: where the model looked while writing each word of its caption.

`caption_with_attention` captions a photo with `generate(..., output_attentions=True)` and keeps one attention map
per generated word, reshaped to the encoder's region grid. `plot_attention` draws one panel per word: the real photo
(in its real aspect ratio) darkened where the word's attention is low and brightened where it is high, the map
upsampled smoothly from the grid to the photo. `save_attention_gif` writes the same panels as an animated GIF.

The image processor squash-resizes the whole photo to a square, so grid cell `(i, j)` of an `h x w` grid covers rows
`i/h .. (i+1)/h` and columns `j/w .. (j+1)/w` of the original photo, whatever its aspect ratio.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from .grounding import region_grid_shape
from .processing_show_attend_tell import load_image

DISPLAY_SIDE = 448  # longest side, in pixels, of the photo in each panel / GIF frame


@dataclass
class CaptionAttention:
    """A generated caption with the attention of each of its words.

    Args:
        image: the original photo (RGB, full resolution).
        caption: the caption as clean text.
        words: the caption's words, one per generated token (special tokens and `<eos>` left out).
        attention: `(len(words), grid_height, grid_width)` attention weights on the encoder's region grid; each map
            sums to 1.
    """

    image: Image.Image
    caption: str
    words: list[str]
    attention: np.ndarray

    @property
    def grid_shape(self) -> tuple[int, int]:
        return tuple(self.attention.shape[1:])


def captions_with_attention(
    model: Any, processor: Any, images: Sequence[Any], **generate_kwargs
) -> list[CaptionAttention]:
    """Caption a batch of images and keep each word's attention map.

    Args:
        model: a `ShowAttendTellForConditionalGeneration` (or a folder's remote-code copy of it).
        processor: its `ShowAttendTellProcessor`.
        images: paths, URLs, bytes, arrays or PIL images (anything `load_image` reads).
        generate_kwargs: passed to `model.generate()` (`num_beams`, `max_new_tokens`, `length_penalty`, ...).

    Returns:
        One `CaptionAttention` per returned sequence (`num_return_sequences` per image, in order).
    """
    photos = [load_image(image) for image in images]
    if not photos:
        raise ValueError("captions_with_attention: no images given")
    pixel_values = processor(images=photos)["pixel_values"].to(model.device, model.dtype)
    outputs = model.generate(pixel_values, output_attentions=True, return_dict_in_generate=True, **generate_kwargs)
    generated = outputs.sequences[:, 1:].cpu()  # (num_sequences, tokens); sequences start with decoder_start_token
    maps = outputs.attention_maps.float().cpu()  # (num_sequences, tokens, num_regions), aligned with `generated`
    grid = region_grid_shape(maps.shape[-1])
    tokenizer = processor.tokenizer
    eos_ids = set(np.atleast_1d(generate_kwargs.get("eos_token_id", model.generation_config.eos_token_id)).tolist())
    special_ids = set(tokenizer.all_special_ids)
    per_image = generated.shape[0] // len(photos)
    captions = processor.batch_decode(outputs.sequences)

    results = []
    for row, (token_ids, row_maps) in enumerate(zip(generated.tolist(), maps, strict=True)):
        words, kept = [], []
        for step, token_id in enumerate(token_ids):
            if token_id in eos_ids:
                break
            if token_id in special_ids or token_id < 0:
                continue
            words.append(tokenizer.decode([token_id]).strip())
            kept.append(step)
        attention = row_maps[kept].reshape(len(kept), *grid).numpy()
        results.append(CaptionAttention(photos[row // per_image], captions[row], words, attention))
    return results


def caption_with_attention(model: Any, processor: Any, image: Any, **generate_kwargs) -> CaptionAttention:
    """Caption one image and keep each word's attention map (see `captions_with_attention`)."""
    return captions_with_attention(model, processor, [image], **generate_kwargs)[0]


def upsample_attention(attention: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Smoothly resize a `(grid_height, grid_width)` map to `size=(height, width)` pixels (bicubic, clipped to the
    map's range). Cell `(i, j)` lands on the `1/grid_height x 1/grid_width` block of the output it covers."""
    grid = torch.as_tensor(np.asarray(attention, dtype=np.float32))[None, None]
    resized = F.interpolate(grid, size=size, mode="bicubic", align_corners=False)[0, 0]
    return resized.clamp(float(grid.min()), float(grid.max())).numpy()


def _display_photo(image: Image.Image, max_side: int) -> Image.Image:
    scale = min(1.0, max_side / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.BICUBIC) if size != image.size else image


def overlay_attention(image: Image.Image, attention: np.ndarray, floor: float = 0.2, glow: float = 0.25) -> Image.Image:
    """The photo lit by one word's attention: brightness scales from `floor` (no attention) to full (the word's peak),
    and the most attended area is lifted towards white by `glow`."""
    photo = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (height, width, 3)
    heat = upsample_attention(attention, photo.shape[:2])
    peak = float(heat.max())
    heat = (heat / peak if peak > 0 else np.zeros_like(heat))[..., None]
    lit = photo * (floor + (1.0 - floor) * heat) + glow * heat * (1.0 - photo)
    return Image.fromarray(np.clip(lit * 255.0 + 0.5, 0, 255).astype(np.uint8))


def _check_words(result: CaptionAttention) -> None:
    if len(result.words) != len(result.attention):
        raise ValueError(f"{len(result.words)} words but {len(result.attention)} attention maps")
    if not result.words:
        raise ValueError(f"caption {result.caption!r} has no words to show attention for")


def plot_attention(
    result: CaptionAttention,
    path: str | os.PathLike | None = None,
    columns: int = 5,
    panel_width: float = 3.0,
    max_side: int = DISPLAY_SIDE,
    dpi: int = 100,
) -> Figure:
    """One panel per word, `columns` per row: the photo lit by that word's attention, the word as the title.

    Args:
        result: output of `caption_with_attention`.
        path: when given, the figure is also saved there as PNG.
        columns: panels per row.
        panel_width: width of each panel in inches (the height follows the photo's aspect ratio).
        max_side: the photo is shown downscaled to at most this many pixels on its longest side.
        dpi: resolution of the saved PNG.
    """
    _check_words(result)
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    photo = _display_photo(result.image, max_side)
    columns = min(columns, len(result.words))
    rows = math.ceil(len(result.words) / columns)
    title_space = 0.35  # inches above each panel for the word
    panel_height = panel_width * photo.height / photo.width
    # A pyplot-free figure on the Agg canvas: no display needed, nothing kept alive in pyplot's global registry.
    figure = Figure(figsize=(columns * panel_width, rows * (panel_height + title_space) + title_space), dpi=dpi)
    FigureCanvasAgg(figure)
    figure.suptitle(result.caption, fontsize=11)
    grid = figure.add_gridspec(
        rows,
        columns,
        left=0.01,
        right=0.99,
        bottom=0.01,
        top=1 - title_space / figure.get_figheight(),
        wspace=0.05,
        hspace=0.15,
    )
    for index, (word, attention) in enumerate(zip(result.words, result.attention, strict=True)):
        axes = figure.add_subplot(grid[index // columns, index % columns])
        axes.imshow(overlay_attention(photo, attention), interpolation="bilinear")
        axes.set_title(word, fontsize=12)
        axes.set_axis_off()
    if path is not None:
        figure.savefig(path, format="png", dpi=dpi)
    return figure


def save_attention_gif(
    result: CaptionAttention, path: str | os.PathLike, duration_ms: int = 800, max_side: int = DISPLAY_SIDE
) -> None:
    """Animated GIF with one frame per word: the photo lit by that word's attention, the word and its position in the
    caption written on a bar below it (so repeated words stay separate frames). Loops forever, `duration_ms` per
    frame."""
    _check_words(result)
    photo = _display_photo(result.image, max_side)
    font = ImageFont.load_default(size=max(12, photo.height // 16))
    bar = int(getattr(font, "size", 11)) + 12
    frames = []
    for index, (word, attention) in enumerate(zip(result.words, result.attention, strict=True)):
        frame = Image.new("RGB", (photo.width, photo.height + bar), "black")
        frame.paste(overlay_attention(photo, attention), (0, 0))
        draw = ImageDraw.Draw(frame)
        draw.text((photo.width // 2, photo.height + bar // 2), word, fill="white", font=font, anchor="mm")
        counter = f"{index + 1}/{len(result.words)}"
        draw.text((photo.width - 6, photo.height + bar // 2), counter, fill="gray", font=font, anchor="rm")
        frames.append(frame.quantize(method=Image.Quantize.FASTOCTREE))  # fast 256-colour palette per frame
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)


__all__ = [
    "CaptionAttention",
    "caption_with_attention",
    "captions_with_attention",
    "overlay_attention",
    "plot_attention",
    "region_grid_shape",
    "save_attention_gif",
    "upsample_attention",
]
