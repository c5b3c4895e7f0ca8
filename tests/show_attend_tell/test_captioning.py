"""The one inference path: every entry point gives the same caption and attention; the model states its grid, square
or not; decoding defaults come from the saved generation_config."""

from __future__ import annotations

import datasets
import numpy as np
import pytest
import torch
from transformers import AutoModel, AutoProcessor, GenerationConfig, pipeline

from model_card.handler import EndpointHandler
from show_attend_tell import Caption, ShowAttendTellConfig, caption_images
from show_attend_tell.cli import main as cli_main
from show_attend_tell.evaluation import evaluate_captioner
from show_attend_tell.grounding import pointing_game
from show_attend_tell.visualization import plot_attention
from tests.conftest import make_tiny


@pytest.fixture(scope="module")
def captions(coco_train_rows) -> list[str]:
    return [caption for row in coco_train_rows[:60] for caption in row["captions"]]


@pytest.fixture(scope="module")
def photos(coco_train_rows) -> list[str]:
    return [str(row["path"]) for row in coco_train_rows[:3]]


# --------------------------------------------------------------------------------------------------------------------
# The grid
# --------------------------------------------------------------------------------------------------------------------


def test_config_derives_channels_and_grid_from_the_backbone():
    square = ShowAttendTellConfig(backbone="resnet10t", image_size=64)
    assert (square.encoder_dim, square.grid_size, square.num_regions) == (512, [2, 2], 4)
    wide = ShowAttendTellConfig(backbone="resnet10t", image_size=[64, 160])
    assert (wide.image_height_width, wide.grid_size) == ((64, 160), [2, 5])
    finer = ShowAttendTellConfig(backbone="resnet10t", image_size=[64, 160], feature_index=-2)  # stride 16
    assert (finer.encoder_dim, finer.grid_size) == (256, [4, 10])
    reloaded = ShowAttendTellConfig.from_dict(finer.to_dict())
    assert (reloaded.grid_size, reloaded.encoder_dim, reloaded.image_size) == ([4, 10], 256, [64, 160])


def test_config_refuses_a_grid_or_width_the_backbone_does_not_have():
    with pytest.raises(ValueError, match=r"grid_size=\[3, 3\] but backbone 'resnet10t' .* gives \[2, 2\]"):
        ShowAttendTellConfig(backbone="resnet10t", image_size=64, grid_size=[3, 3])
    with pytest.raises(ValueError, match="encoder_dim=100 but backbone"):
        ShowAttendTellConfig(backbone="resnet10t", image_size=64, encoder_dim=100)


def test_a_non_square_grid_trains_generates_draws_and_scores_grounding(tmp_path, captions, coco_train_rows):
    model, processor = make_tiny(captions, image_size=[64, 128], dropout=0.0)  # 2 rows x 4 columns
    assert model.config.grid_size == [2, 4]
    photo = str(coco_train_rows[0]["path"])
    batch = processor(images=[photo], text=[captions[0]])
    assert batch["pixel_values"].shape[-2:] == (64, 128)

    model.freeze_encoder(trainable_blocks=0)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    losses = []
    for _ in range(30):
        outputs = model(**batch)
        assert outputs.attentions.shape[-1] == 8
        optimizer.zero_grad()
        outputs.loss.backward()
        optimizer.step()
        losses.append(outputs.loss.item())
    assert losses[-1] < 0.5 * losses[0], losses
    model.eval()

    result = caption_images(model, processor, [photo], num_beams=2, max_new_tokens=4)[0]
    assert result.grid_size == (2, 4) and result.attention.shape == (len(result.words), 2, 4)
    np.testing.assert_allclose(result.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)
    figure = plot_attention(result, path=tmp_path / "wide.png")
    assert len([axes for axes in figure.axes if axes.images]) == len(result.words)

    # Grounding maps the non-square grid onto the photo: attention on cell (0, 3) points into the top-right eighth.
    width, height = result.image.size
    maps = np.zeros((1, 2, 4))
    maps[0, 0, 3] = 1.0
    objects = {"bbox": [[0.75 * width, 0, 0.25 * width, 0.5 * height]], "category": ["dog"]}
    (scored,) = pointing_game(["dog"], maps, (width, height), objects)
    assert scored.hit and scored.point == (0.875 * width, 0.25 * height)


# --------------------------------------------------------------------------------------------------------------------
# One path
# --------------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved_folder(tmp_path_factory, captions):
    """A saved tiny model with a non-square grid whose generation_config says greedy decoding, 5 new tokens."""
    model, processor = make_tiny(captions, image_size=[64, 96], seed=3)
    model.generation_config = GenerationConfig.from_model_config(model.config)
    model.generation_config.update(num_beams=1, max_new_tokens=5)
    directory = tmp_path_factory.mktemp("one_path")
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory, model, processor


def same_caption(caption: Caption, entry: dict) -> None:
    assert entry["generated_text"] == caption.text
    assert entry["words"] == caption.words
    assert entry["grid_size"] == list(caption.grid_size) == [2, 3]
    np.testing.assert_allclose(np.asarray(entry["attention"]), caption.attention, atol=1e-5)


def test_pipeline_handler_cli_and_evaluation_give_the_library_caption_and_attention(saved_folder, photos, capsys):
    directory, _, _ = saved_folder
    # The folder as every entry point loads it (transformers may pick a fast image processor for a saved one).
    model = AutoModel.from_pretrained(directory, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(directory, trust_remote_code=True)
    expected = caption_images(model, processor, photos, num_beams=3, max_new_tokens=6)
    assert all(caption.words for caption in expected)

    captioner = pipeline(model=str(directory), trust_remote_code=True)  # the folder's own code
    for batch_size in (1, 2):
        outputs = captioner(photos, num_beams=3, max_new_tokens=6, return_attention=True, batch_size=batch_size)
        for caption, (entry,) in zip(expected, outputs, strict=True):
            same_caption(caption, entry)

    handler = EndpointHandler(str(directory))
    images = [open(path, "rb").read() for path in photos]  # what a request carries
    response = handler(
        {"inputs": images, "parameters": {"num_beams": 3, "max_new_tokens": 6, "return_attention": True}}
    )
    for caption, entry in zip(expected, response, strict=True):
        same_caption(caption, entry)

    assert cli_main(["caption", *photos, "--model", str(directory), "--num-beams", "3", "--max-new-tokens", "6"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed == [f"{path}\t{caption.text}" for path, caption in zip(photos, expected, strict=True)]

    rows = {"image": photos, "captions": [["a photo"]] * len(photos), "image_id": [str(i) for i in range(len(photos))]}
    dataset = datasets.Dataset.from_dict(rows).cast_column("image", datasets.Image())
    evaluation = evaluate_captioner(model, processor, dataset, num_beams=3, max_new_tokens=6)
    assert [row["caption"] for row in evaluation.predictions] == [caption.text for caption in expected]


def test_decoding_defaults_come_from_the_saved_generation_config(saved_folder, photos, capsys):
    directory, model, processor = saved_folder
    greedy_five = caption_images(model, processor, photos, num_beams=1, max_new_tokens=5)
    assert [caption.text for caption in caption_images(model, processor, photos)] == [c.text for c in greedy_five]
    assert any(len(caption.words) == 5 for caption in greedy_five)  # the saved limit is what stops a caption

    assert cli_main(["caption", *photos, "--model", str(directory)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{p}\t{c.text}" for p, c in zip(photos, greedy_five, strict=True)]
    handler = EndpointHandler(str(directory))
    response = handler({"inputs": [open(path, "rb").read() for path in photos]})
    assert [entry["generated_text"] for entry in response] == [caption.text for caption in greedy_five]
    captioner = pipeline(model=str(directory), trust_remote_code=True)
    assert [out[0]["generated_text"] for out in captioner(photos)] == [caption.text for caption in greedy_five]


def test_a_caption_ends_at_the_first_end_token(saved_folder, photos):
    _, model, processor = saved_folder
    eos = processor.tokenizer.eos_token_id
    # Forcing <eos> as the 3rd token: 2 words, 2 maps, and the text is exactly those words.
    (caption,) = caption_images(model, processor, photos[:1], max_new_tokens=6, forced_eos_token_id=eos)
    full = caption_images(model, processor, photos[:1], max_new_tokens=6, min_new_tokens=6)[0]
    assert len(caption.words) <= 5 and caption.text == " ".join(caption.words)
    assert caption.attention.shape == (len(caption.words), 2, 3)
    assert full.words[: len(caption.words)] == caption.words
