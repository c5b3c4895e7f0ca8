"""ONNX export and the torch-free ONNX Runtime captioner, against the PyTorch model on real coco-mini photos."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import NoRepeatNGramLogitsProcessor

from show_attend_tell import (
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    build_image_processor,
    caption_images,
)
from show_attend_tell.cli import main
from show_attend_tell.configuration_show_attend_tell import caption_lengths
from show_attend_tell.onnx_export import until_eos
from show_attend_tell.processing_show_attend_tell import load_image
from show_attend_tell_onnx import OnnxCaptioner, Preprocessing, repeated_ngram_ends, to_rgb
from show_attend_tell_onnx import caption_lengths as numpy_caption_lengths
from tests.conftest import REPO_ROOT, generated_rows, read_metadata

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def test_photos(coco_mini) -> list[Path]:
    return [row["path"] for row in read_metadata(coco_mini / "test")]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_dir, test_photos) -> tuple[Path, str]:
    """A copy of the tiny model folder exported through the CLI (with the quantised decoder), and the CLI's output."""
    folder = tmp_path_factory.mktemp("onnx") / "model"
    shutil.copytree(tiny_model_dir, folder)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = main(["export-onnx", str(folder), "--quantize", "--verify-images", *map(str, test_photos[:4])])
    assert status == 0
    return folder, out.getvalue()


def test_export_writes_checked_verified_files(exported):
    folder, printed = exported
    names = {path.name for path in (folder / "onnx").iterdir()}
    assert {"encoder_model.onnx", "decoder_model.onnx", "decoder_model_quantized.onnx", "captioner.json"} <= names
    report = json.loads(printed[printed.index("{") :])
    verification = report["verification"]
    assert verification["max_abs_diff_logits"] < 1e-4 and verification["max_abs_diff_attention"] < 1e-5
    assert verification["max_abs_diff_hidden"] < 1e-5
    assert verification["greedy_same"] == verification["beam3_same"] == 4
    quantized = report["quantized"]
    assert 0 < quantized["max_abs_diff_logits"] < 1.0  # int8 weights change the logits, a little
    lines = [line.split("\t") for line in printed.splitlines() if "\t" in line]
    sizes = {Path(path).name: float(size.split()[0]) for path, size in lines}
    assert sizes["decoder_model_quantized.onnx"] < 0.5 * sizes["decoder_model.onnx"]
    config = json.loads((folder / "onnx" / "captioner.json").read_text())
    assert config["grid"] == [2, 2]
    assert len(config["vocab"]) == len(ShowAttendTellProcessor.from_pretrained(folder).tokenizer)


@pytest.mark.parametrize("num_beams", [1, 3])
def test_ort_captions_equal_pytorch_on_real_photos(exported, test_photos, num_beams):
    """End to end from the files: the runtime's own preprocessing, ONNX Runtime, numpy decoding."""
    folder, _ = exported
    model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
    processor = ShowAttendTellProcessor.from_pretrained(folder)
    photos = test_photos[:10]
    expected = caption_images(model, processor, photos, num_beams=num_beams)
    got = OnnxCaptioner(folder).caption(photos, num_beams=num_beams)
    assert [r.text for r in got] == [r.text for r in expected]
    for ours, theirs in zip(got, expected, strict=True):
        assert ours.words == theirs.words
        assert np.abs(ours.attention - theirs.attention).max() < 1e-4
        np.testing.assert_allclose(ours.attention.sum(axis=(1, 2)), 1.0, atol=1e-5)


def test_beam_search_follows_transformers_rules(exported, test_photos):
    """Length penalty and early stopping change which hypothesis wins; the numpy beam search follows each setting."""
    folder, _ = exported
    model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
    pixel_values = ShowAttendTellProcessor.from_pretrained(folder)(images=test_photos[:6])["pixel_values"]
    captioner = OnnxCaptioner(folder)
    eos = model.config.eos_token_id
    for options in (
        {"length_penalty": 0.0, "early_stopping": True},
        {"length_penalty": 2.0, "early_stopping": "never"},
    ):
        with torch.inference_mode():
            expected = model.generate(pixel_values, num_beams=4, max_new_tokens=12, **options)
        got, maps, scores = captioner.generate(pixel_values.numpy(), num_beams=4, max_new_tokens=12, **options)
        assert [until_eos(row, eos) for row in got] == [until_eos(row, eos) for row in expected.numpy()]
        assert maps.shape[:2] == (6, got.shape[1] - 1) and scores.shape == (6,)


@pytest.mark.parametrize("ngram_size", [0, 2])
def test_tokens_the_generation_config_rules_out_are_never_written_as_in_generate(
    tmp_path, tiny_model_dir, test_photos, ngram_size
):
    """generation_config.json's `suppress_tokens` (a trained captioner suppresses `<unk>`) and `no_repeat_ngram_size`:
    the numpy greedy and beam searches leave tokens out exactly where transformers' `generate()` does."""
    model = ShowAttendTellForConditionalGeneration.from_pretrained(tiny_model_dir).eval()
    processor = ShowAttendTellProcessor.from_pretrained(tiny_model_dir)
    unk = processor.tokenizer.unk_token_id
    with torch.no_grad():
        model.lm_head.bias[unk] += 0.5  # a favourite word, as `<unk>` is for a model trained on rare words
    pixel_values = processor(images=test_photos[:6])["pixel_values"]
    with torch.inference_mode():
        unconstrained = model.generate(pixel_values, num_beams=1, max_new_tokens=12)
    assert (unconstrained == unk).any(), "the test needs a model that writes <unk>"
    if ngram_size:
        captions = [[*row[:1], *until_eos(row[1:], model.config.eos_token_id)] for row in unconstrained.numpy()]
        repeats = [
            row[end] in repeated_ngram_ends(np.array([row[:end]]), ngram_size)[0]
            for row in captions
            for end in range(1, len(row))
        ]
        assert any(repeats), "the test needs a model that repeats itself"
    model.generation_config.suppress_tokens = [unk]
    model.generation_config.no_repeat_ngram_size = ngram_size
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    assert main(["export-onnx", str(folder)]) == 0
    captioner = OnnxCaptioner(folder)
    eos = model.config.eos_token_id
    for num_beams in (1, 3):
        with torch.inference_mode():
            expected = model.generate(pixel_values, num_beams=num_beams, max_new_tokens=12).numpy()
        got, _, _ = captioner.generate(pixel_values.numpy(), num_beams=num_beams, max_new_tokens=12)
        assert not (expected == unk).any() and not (got == unk).any()
        assert [until_eos(row, eos) for row in got] == [until_eos(row, eos) for row in expected]


@pytest.mark.parametrize("ngram_size", [1, 2, 3, 4])
def test_repeated_ngram_ends_equal_transformers_processor(ngram_size):
    """`no_repeat_ngram_size` of the numpy runtime against transformers' `NoRepeatNGramLogitsProcessor`, on short
    sequences over a 6-token vocabulary (many repeats), lengths 1 to 11."""
    generator = np.random.default_rng(ngram_size)
    processor = NoRepeatNGramLogitsProcessor(ngram_size)
    for length in range(1, 12):
        sequences = generator.integers(0, 6, size=(20, length))
        scores = processor(torch.from_numpy(sequences), torch.zeros(20, 6))
        expected = [sorted(set(torch.nonzero(row == -float("inf")).flatten().tolist())) for row in scores]
        assert [sorted(set(ends)) for ends in repeated_ngram_ends(sequences, ngram_size)] == expected


@pytest.mark.parametrize("image_size", [64, 256])
def test_numpy_preprocessing_matches_processor(test_photos, image_size):
    """The torch-free preprocessing against the saved processor (torchvision) on all 40 coco-mini test photos."""
    image_processor = build_image_processor("resnet10t", image_size)
    ours = Preprocessing(image_size, image_size, tuple(image_processor.image_mean), tuple(image_processor.image_std))
    expected = image_processor([load_image(p) for p in test_photos], return_tensors="pt")["pixel_values"].numpy()
    got = ours(test_photos)
    assert np.abs(got - expected).max() < 1e-6  # the same 8-bit pixels, normalised with the same float32 operations


def test_numpy_caption_lengths_equal_torch():
    """The runtime's end-of-caption rule is the PyTorch one (`caption_lengths`: the model's maps, the pipeline)."""
    eos = 2
    rows = generated_rows(eos)
    expected = caption_lengths(torch.from_numpy(rows), eos).numpy()
    assert np.array_equal(numpy_caption_lengths(rows, eos), expected)
    assert expected.min() == 0 and expected.max() == rows.shape[1] and len(set(expected.tolist())) == 13
    empty = np.zeros((3, 0), dtype=np.int64)
    assert np.array_equal(numpy_caption_lengths(empty, eos), caption_lengths(torch.from_numpy(empty), eos).numpy())


def test_to_rgb_matches_load_image():
    """Transparency on white, palettes and grey: the same RGB pixels as the package's `load_image`."""
    rng = np.random.default_rng(0)
    rgba = Image.fromarray(rng.integers(0, 256, (20, 30, 4), dtype=np.uint8), "RGBA")
    for image in (rgba, rgba.convert("P"), rgba.convert("L"), rgba.convert("LA")):
        assert np.array_equal(np.asarray(to_rgb(image)), np.asarray(load_image(image)))


def test_runtime_imports_no_torch(exported, test_photos):
    """The captioner runs where torch cannot be imported at all."""
    folder, _ = exported
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from show_attend_tell_onnx import OnnxCaptioner\n"
        f"result = OnnxCaptioner({str(folder)!r}).caption([{str(test_photos[0])!r}], num_beams=2)[0]\n"
        "assert not any(name.split('.')[0] == 'torch' for name in sys.modules)\n"
        "print(result.text)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    model = ShowAttendTellForConditionalGeneration.from_pretrained(folder).eval()
    processor = ShowAttendTellProcessor.from_pretrained(folder)
    assert done.stdout.strip() == caption_images(model, processor, test_photos[:1], num_beams=2)[0].text


def test_clear_errors(tmp_path, tiny_model_dir, capsys):
    with pytest.raises(ValueError, match="model folder not found"):
        OnnxCaptioner(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"no onnx/encoder_model.onnx.*export-onnx"):
        OnnxCaptioner(tiny_model_dir)
    assert main(["export-onnx", str(tmp_path / "nowhere")]) == 2
    assert "nowhere: model folder not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["export-onnx", str(tmp_path / "empty")]) == 2
    assert "no config.json" in capsys.readouterr().err
    assert main(["export-onnx", str(tiny_model_dir), "--verify-images", str(tmp_path / "missing.jpg")]) == 2
    assert "image file not found" in capsys.readouterr().err
    with pytest.raises(ValueError, match="missing.jpg"):
        to_rgb(tmp_path / "missing.jpg")
