"""Per-word attention figures: where the model looked while writing each word of its caption.

`plot_attention` draws one panel per word of a `Caption` (from `caption_images`, the one inference path): the real
photo (in its real aspect ratio) darkened where the word's attention is low and brightened where it is high, the map
upsampled smoothly from the model's region grid (`config.grid_size`, any height and width) to the photo.
`save_attention_gif` writes the same panels as an animated GIF.

Each map is shown from its own minimum (darkest) to its own maximum (brightest), so the relative focus of every word
is visible; because that stretches a nearly flat map as much as a sharp one, every panel and frame also prints the
map's peak weight and its ratio to a uniform map's (`1 / regions`): "peak 0.017 = 1.1x uniform" is a flat map.

The image processor resizes the whole photo to `config.image_size` without cropping, so grid cell `(i, j)` of an
`h x w` grid covers rows `i/h .. (i+1)/h` and columns `j/w .. (j+1)/w` of the original photo, whatever its aspect
ratio.
"""

from __future__ import annotations

import math
import os
import textwrap

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image, ImageDraw, ImageFont

from .pipeline_show_attend_tell import Caption

DISPLAY_SIDE = 448  # longest side, in pixels, of the photo in each panel / GIF frame
CAPTION_FONT_SIZE = 11


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
    """The photo lit by one word's attention, scaled from the map's own minimum to its maximum: brightness goes from
    `floor` (the least attended area) to full (the most attended one), which is also lifted towards white by `glow`.
    A perfectly flat map is shown at `floor` everywhere."""
    photo = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (height, width, 3)
    heat = upsample_attention(attention, photo.shape[:2])
    low, high = float(heat.min()), float(heat.max())
    heat = ((heat - low) / (high - low) if high > low else np.zeros_like(heat))[..., None]
    lit = photo * (floor + (1.0 - floor) * heat) + glow * heat * (1.0 - photo)
    return Image.fromarray(np.clip(lit * 255.0 + 0.5, 0, 255).astype(np.uint8))


def peak_label(attention: np.ndarray) -> str:
    """`"peak 0.312 = 5.0x uniform"`: the map's largest weight, and its ratio to a uniform map's (1 / regions)."""
    attention = np.asarray(attention, dtype=np.float64)
    peak = float(attention.max())
    return f"peak {peak:.3f} = {peak * attention.size:.1f}x uniform"


def _check_caption(result: Caption) -> Image.Image:
    """The caption's photo, after checking that there is one, and one attention map per word."""
    if len(result.words) != len(result.attention):
        raise ValueError(f"{len(result.words)} words but {len(result.attention)} attention maps")
    if not result.words:
        raise ValueError(f"caption {result.text!r} has no words to show attention for")
    if result.image is None:
        raise ValueError("caption has no image: caption the photo with caption_images(model, processor, [photo])")
    return result.image


def plot_attention(
    result: Caption,
    path: str | os.PathLike | None = None,
    columns: int = 5,
    panel_width: float = 3.0,
    max_side: int = DISPLAY_SIDE,
    dpi: int = 100,
) -> Figure:
    """One panel per word, `columns` per row: the photo lit by that word's attention, the word as the title.

    Args:
        result: a `Caption` from `caption_images`, with its photo.
        path: when given, the figure is also saved there as PNG.
        columns: panels per row.
        panel_width: width of each panel in inches (the height follows the photo's aspect ratio).
        max_side: the photo is shown downscaled to at most this many pixels on its longest side.
        dpi: resolution of the saved PNG.
    """
    image = _check_caption(result)
    if columns < 1:
        raise ValueError(f"columns must be >= 1, got {columns}")
    photo = _display_photo(image, max_side)
    columns = min(columns, len(result.words))
    rows = math.ceil(len(result.words) / columns)
    # Vertical bands in inches: the caption (wrapped to the figure's width), then per row the word, the panel and
    # its peak label. Each text gets its own band, so the caption never overlaps the first row's words.
    width = columns * panel_width
    caption = textwrap.fill(result.text, width=max(20, int(width * 72 / (CAPTION_FONT_SIZE * 0.6))))
    caption_band = 0.15 + 0.25 * (caption.count("\n") + 1)
    word_band, label_band = 0.3, 0.25
    panel_height = panel_width * photo.height / photo.width
    height = caption_band + rows * (word_band + panel_height + label_band)
    # A pyplot-free figure on the Agg canvas: no display needed, nothing kept alive in pyplot's global registry.
    figure = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(figure)
    figure.suptitle(caption, fontsize=CAPTION_FONT_SIZE, y=1 - caption_band / 2 / height, va="center")
    grid = figure.add_gridspec(
        rows,
        columns,
        left=0.01,
        right=0.99,
        bottom=label_band / height,
        top=1 - (caption_band + word_band) / height,
        wspace=0.05,
        hspace=(word_band + label_band) / panel_height,
    )
    for index, (word, attention) in enumerate(zip(result.words, result.attention, strict=True)):
        axes = figure.add_subplot(grid[index // columns, index % columns])
        axes.imshow(overlay_attention(photo, attention), interpolation="bilinear")
        axes.set_title(word, fontsize=12)
        axes.text(0.5, -0.02, peak_label(attention), transform=axes.transAxes, ha="center", va="top", fontsize=8)
        axes.set_axis_off()
    if path is not None:
        figure.savefig(path, format="png", dpi=dpi)
    return figure


def save_attention_gif(
    result: Caption, path: str | os.PathLike, duration_ms: int = 800, max_side: int = DISPLAY_SIDE
) -> None:
    """Animated GIF with one frame per word: the photo lit by that word's attention (scaled like `plot_attention`),
    and on a bar below it the word with its position in the caption (so repeated words stay separate frames) and,
    under them, the map's peak weight against uniform. Loops forever, `duration_ms` per frame."""
    photo = _display_photo(_check_caption(result), max_side)
    font = ImageFont.load_default(size=max(12, photo.height // 16))
    small = ImageFont.load_default(size=max(10, photo.height // 24))
    line, small_line = int(getattr(font, "size", 11)) + 8, int(getattr(small, "size", 10)) + 8
    bar = line + small_line
    frames = []
    for index, (word, attention) in enumerate(zip(result.words, result.attention, strict=True)):
        frame = Image.new("RGB", (photo.width, photo.height + bar), "black")
        frame.paste(overlay_attention(photo, attention), (0, 0))
        draw = ImageDraw.Draw(frame)
        draw.text((photo.width // 2, photo.height + line // 2), word, fill="white", font=font, anchor="mm")
        counter = f"{index + 1}/{len(result.words)}"
        draw.text((photo.width - 6, photo.height + line // 2), counter, fill="gray", font=font, anchor="rm")
        label = peak_label(attention)
        draw.text(
            (photo.width // 2, photo.height + line + small_line // 2), label, fill="lightgray", font=small, anchor="mm"
        )
        frames.append(frame.quantize(method=Image.Quantize.FASTOCTREE))  # fast 256-colour palette per frame
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], duration=duration_ms, loop=0)


__all__ = ["overlay_attention", "peak_label", "plot_attention", "save_attention_gif", "upsample_attention"]
