"""Attention figures on real photos: the highlight lands where the model attended, one panel per word, real aspect."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from show_attend_tell import Caption, caption_images, load_image
from show_attend_tell.visualization import (
    overlay_attention,
    peak_label,
    plot_attention,
    save_attention_gif,
    upsample_attention,
)
from tests.conftest import make_tiny


class OneRegionAttention(nn.Module):
    """Wraps the model's attention and replaces its weights by a one-hot `alpha` on `region` (context as computed)."""

    def __init__(self, attention: nn.Module, region: int):
        super().__init__()
        self.attention = attention
        self.region = region

    def forward(self, regions, projected_regions, hidden):
        context, alpha, beta = self.attention(regions, projected_regions, hidden)
        one_hot = torch.zeros_like(alpha)  # (rows, num_regions)
        one_hot[:, self.region] = 1.0
        return context, one_hot, beta


@pytest.fixture(scope="module")
def captions(coco_train_rows) -> list[str]:
    return [caption for row in coco_train_rows[:80] for caption in row["captions"]]


def forced_model(captions: list[str], image_size: int, region: int):
    model, processor = make_tiny(captions, image_size=image_size)
    model.attention = OneRegionAttention(model.attention, region)
    return model, processor


def landscape_photo(rows: list[dict]) -> Image.Image:
    return next(image for image in map(lambda row: load_image(row["path"]), rows) if image.width > 1.3 * image.height)


def portrait_photo(rows: list[dict]) -> Image.Image:
    return next(image for image in map(lambda row: load_image(row["path"]), rows) if image.height > 1.3 * image.width)


def luminance(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L"), dtype=np.float64)


def image_panels(figure) -> list:
    return [axes for axes in figure.axes if axes.images]


def panel_crop(png: Image.Image, axes) -> Image.Image:
    """The pixels of one panel in the saved PNG (matplotlib's display origin is bottom-left, the PNG's top-left)."""
    box = axes.get_window_extent()
    left, right = round(box.x0), round(box.x1)
    top, bottom = png.height - round(box.y1), png.height - round(box.y0)
    return png.crop((left, top, right, bottom))


def block_brightening(shown: Image.Image, photo: Image.Image, grid: tuple[int, int]) -> np.ndarray:
    """Per grid block: summed luminance of the shown panel over summed luminance of the plain photo there."""
    shown_luma = luminance(shown)
    photo_luma = luminance(photo.resize(shown.size, Image.Resampling.BILINEAR))
    rows, cols = grid
    height, width = shown_luma.shape
    ratios = np.zeros(grid)
    for i in range(rows):
        for j in range(cols):
            block = np.s_[i * height // rows : (i + 1) * height // rows, j * width // cols : (j + 1) * width // cols]
            ratios[i, j] = shown_luma[block].sum() / photo_luma[block].sum()
    return ratios


@pytest.mark.parametrize(
    ("image_size", "cell"),
    [(64, (0, 1)), (128, (3, 0)), (128, (1, 2))],
    ids=["2x2-top-right", "4x4-bottom-left", "4x4-inner"],
)
def test_highlight_lands_on_the_attended_cell(tmp_path, captions, coco_train_rows, image_size, cell):
    grid_side = image_size // 32
    model, processor = forced_model(captions, image_size, region=cell[0] * grid_side + cell[1])
    photo = landscape_photo(coco_train_rows)

    result = caption_images(model, processor, [photo], max_new_tokens=4)[0]

    assert result.attention.shape == (len(result.words), grid_side, grid_side)
    expected = np.zeros((grid_side, grid_side))
    expected[cell] = 1.0
    np.testing.assert_allclose(result.attention, np.broadcast_to(expected, result.attention.shape), atol=1e-6)

    path = tmp_path / "attention.png"
    figure = plot_attention(result, path=path, columns=2)
    png = Image.open(path).convert("RGB")
    assert png.size == figure.canvas.get_width_height()  # the PNG is the figure at its own dpi: same pixels
    for axes in image_panels(figure):
        ratios = block_brightening(panel_crop(png, axes), photo, (grid_side, grid_side))
        others = np.delete(ratios.reshape(-1), cell[0] * grid_side + cell[1])
        assert np.unravel_index(ratios.argmax(), ratios.shape) == cell, ratios.round(2)
        assert ratios[cell] > 0.8, ratios.round(2)  # the attended area keeps (nearly) all its brightness
        assert others.max() < 0.6 * ratios[cell], ratios.round(2)  # every other area is clearly darker
        if grid_side == 4:  # cells two or more away from the attended one are darkened to near the floor
            far = [ratios[i, j] for i in range(4) for j in range(4) if max(abs(i - cell[0]), abs(j - cell[1])) >= 2]
            assert max(far) < 0.35, ratios.round(2)


def test_one_panel_per_word_with_the_word_as_title(tmp_path, captions, coco_train_rows):
    model, processor = forced_model(captions, 64, region=0)
    result = caption_images(model, processor, [coco_train_rows[3]["path"]], max_new_tokens=7)[0]
    assert len(result.words) == 7  # an untrained model rarely stops early; forced attention keeps it deterministic

    figure = plot_attention(result, columns=3)

    panels = image_panels(figure)
    assert len(panels) == len(result.words)
    assert [axes.get_title() for axes in panels] == result.words
    assert figure._suptitle.get_text() == result.text == " ".join(result.words)
    # Under each panel, its map's peak weight against a uniform map's: one-hot maps on the 2x2 grid.
    assert [[text.get_text() for text in axes.texts] for axes in panels] == [["peak 1.000 = 4.0x uniform"]] * 7
    rows_of_panels = sorted({round(axes.get_position().y0, 3) for axes in panels}, reverse=True)
    assert len(rows_of_panels) == 3  # 7 words in rows of 3
    assert len({round(axes.get_position().x0, 3) for axes in panels}) == 3


@pytest.mark.parametrize("orientation", ["landscape", "portrait"])
def test_panels_keep_the_photo_aspect_ratio(tmp_path, captions, coco_train_rows, orientation):
    photo = landscape_photo(coco_train_rows) if orientation == "landscape" else portrait_photo(coco_train_rows)
    model, processor = forced_model(captions, 64, region=3)
    result = caption_images(model, processor, [photo], max_new_tokens=3)[0]
    assert result.image.size == photo.size

    figure = plot_attention(result, path=tmp_path / "figure.png")
    figure.canvas.draw()
    for axes in image_panels(figure):
        box = axes.get_window_extent()
        assert box.width / box.height == pytest.approx(photo.width / photo.height, rel=0.02)
        shown = axes.images[0].get_array()
        assert shown.shape[1] / shown.shape[0] == pytest.approx(photo.width / photo.height, rel=0.01)


def test_gif_has_one_frame_per_word_with_the_highlight_in_place(tmp_path, captions, coco_train_rows):
    model, processor = forced_model(captions, 64, region=2)  # bottom-left cell of the 2x2 grid
    photo = landscape_photo(coco_train_rows)
    result = caption_images(model, processor, [photo], max_new_tokens=5)[0]

    path = tmp_path / "attention.gif"
    save_attention_gif(result, path, duration_ms=300)

    gif = Image.open(path)
    assert gif.format == "GIF"
    assert gif.n_frames == len(result.words) == 5  # repeated words still get their own frame
    assert gif.info["duration"] == 300
    for index in range(gif.n_frames):
        gif.seek(index)
        frame = gif.convert("RGB")
        assert frame.height > round(frame.width * photo.height / photo.width)  # the bar with the word and peak label
        assert frame.width == min(photo.width, 448)
        picture = frame.crop((0, 0, frame.width, round(frame.width * photo.height / photo.width)))
        ratios = block_brightening(picture, photo, (2, 2))
        assert np.unravel_index(ratios.argmax(), ratios.shape) == (1, 0), ratios.round(2)
        assert ratios[1, 0] > 2 * max(ratios[0, 0], ratios[0, 1], ratios[1, 1]), ratios.round(2)


def test_beam_search_batches_and_eos(captions, coco_train_rows):
    model, processor = forced_model(captions, 64, region=1)
    paths = [coco_train_rows[0]["path"], coco_train_rows[1]["path"]]
    eos = processor.tokenizer.eos_token_id

    results = caption_images(model, processor, paths, num_beams=3, max_new_tokens=5, forced_eos_token_id=eos)

    assert [result.image.size for result in results] == [Image.open(path).size for path in paths]
    for result in results:
        # the 5th token is the forced <eos>: its row is dropped, the 4 words before it keep theirs
        assert len(result.words) == 4 == len(result.attention)
        assert result.text == " ".join(result.words)
        assert all(word and not word.startswith("<") for word in result.words)
        np.testing.assert_allclose(result.attention[:, 0, 1], 1.0, atol=1e-6)

    several = caption_images(model, processor, paths[:1], num_beams=3, num_return_sequences=2)
    assert len(several) == 2 and all(result.image.size == results[0].image.size for result in several)


def test_real_attention_is_a_distribution_over_the_grid(captions, coco_train_rows):
    model, processor = make_tiny(captions, image_size=96)  # 3x3 grid, untrained attention
    result = caption_images(model, processor, [coco_train_rows[5]["path"]], num_beams=2, max_new_tokens=4)[0]
    assert result.grid_size == (3, 3)
    np.testing.assert_allclose(result.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_caption_title_word_titles_and_peak_labels_never_overlap(captions, coco_train_rows):
    """Measured on the rendered figure: the caption (on one line, or wrapped on a narrow figure) sits above the first
    row's words, and each row's peak labels sit above the next row's words; all text stays inside the figure."""
    photo = landscape_photo(coco_train_rows)
    words = "a man riding a wave on top of a surfboard in the ocean next to a pier on a sunny day".split()
    maps = np.full((len(words), 4, 4), 1 / 16)
    for columns in (5, 2):
        figure = plot_attention(Caption(" ".join(words), words, maps, photo), columns=columns)
        renderer = figure.canvas.get_renderer()
        figure.canvas.draw()
        box = figure._suptitle.get_window_extent(renderer)
        assert ("\n" in figure._suptitle.get_text()) == (columns == 2)  # wrapped to a narrow figure's width
        assert box.x0 >= 0 and box.x1 <= figure.bbox.width and box.y1 <= figure.bbox.height
        panels = image_panels(figure)
        rows = [panels[start : start + columns] for start in range(0, len(panels), columns)]
        for axes in rows[0]:
            assert axes.title.get_window_extent(renderer).y1 < box.y0  # the bug: the caption covered these words
        for upper, lower in zip(rows[:-1], rows[1:], strict=True):
            lowest_label = min(text.get_window_extent(renderer).y0 for axes in upper for text in axes.texts)
            highest_word = max(axes.title.get_window_extent(renderer).y1 for axes in lower)
            assert highest_word < lowest_label
        for axes in panels:  # words above their photo, labels below it, all on the figure
            photo_box, title_box = axes.get_window_extent(renderer), axes.title.get_window_extent(renderer)
            (label,) = axes.texts
            assert title_box.y0 >= photo_box.y1 - 1 and label.get_window_extent(renderer).y1 <= photo_box.y0 + 1
            assert label.get_window_extent(renderer).y0 >= 0


def test_each_map_is_shown_from_its_own_minimum_to_its_maximum(coco_train_rows):
    """A nearly flat map (minimum 60% of the peak) still shows where its peak is: the least attended area drops to
    the floor brightness, as for a one-hot map; the printed peak weight tells the two apart."""
    photo = landscape_photo(coco_train_rows).resize((200, 100))
    flat = np.full((2, 2), 0.6)
    flat[0, 1] = 1.0
    flat /= flat.sum()
    one_hot = np.array([[0.0, 1.0], [0.0, 0.0]])
    for attention in (flat, one_hot):
        ratios = block_brightening(overlay_attention(photo, attention), photo, (2, 2))
        assert np.unravel_index(ratios.argmax(), ratios.shape) == (0, 1)
        assert ratios[1, 0] < 0.35, ratios.round(2)  # bottom-left, far from the peak: near the 0.2 floor
    assert peak_label(flat) == "peak 0.357 = 1.4x uniform" and peak_label(one_hot) == "peak 1.000 = 4.0x uniform"
    uniform = np.full((2, 2), 0.25)  # a perfectly flat map: no place is lit more than another
    shown = luminance(overlay_attention(photo, uniform))
    np.testing.assert_allclose(shown, 0.2 * luminance(photo), atol=2.0)


def test_upsampling_aligns_cells_with_their_share_of_the_image():
    attention = np.zeros((2, 3))
    attention[1, 2] = 1.0  # bottom-right cell of a 2-row, 3-column grid
    heat = upsample_attention(attention, (60, 90))
    assert heat.shape == (60, 90)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    rows, cols = np.nonzero(heat > 0.5)
    # the half-strength edge of the highlight is the cell's border (row 30, column 60), give or take the smoothing
    assert 29 <= rows.min() <= 33 and 59 <= cols.min() <= 63
    assert heat[45, 75] > 0.95 and heat[59, 89] == pytest.approx(1.0)  # full strength from the cell's centre out
    # beyond the neighbouring cells' centres (row 15 of the top row, column 45 of the middle column) all is dark
    assert heat[:15, :].max() < 0.05 and heat[:, :45].max() < 0.05


def test_bad_inputs_are_rejected(tmp_path, coco_train_rows):
    photo = load_image(coco_train_rows[0]["path"])
    empty = Caption("", [], np.zeros((0, 2, 2)), photo)
    with pytest.raises(ValueError, match="no words"):
        plot_attention(empty)
    with pytest.raises(ValueError, match="no words"):
        save_attention_gif(empty, tmp_path / "empty.gif")
    mismatched = Caption("a dog", ["a", "dog"], np.zeros((1, 2, 2)), photo)
    with pytest.raises(ValueError, match="2 words but 1 attention maps"):
        plot_attention(mismatched)
    with pytest.raises(ValueError, match="columns"):
        plot_attention(Caption("dog", ["dog"], np.ones((1, 2, 2)) / 4, photo), columns=0)
    with pytest.raises(ValueError, match="no image"):
        plot_attention(Caption("dog", ["dog"], np.ones((1, 2, 2)) / 4))
