"""`show-attend-tell caption` end to end on real photos: captions, attention figures, and one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import zlib

import huggingface_hub.constants
import pytest
import torch
from PIL import Image
from transformers import BertConfig

from show_attend_tell import ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor, build_tokenizer, cli
from show_attend_tell.cli import build_parser, main


@pytest.fixture(scope="module")
def photos(coco_mini) -> list[str]:
    return sorted(str(path) for path in (coco_mini / "test").glob("*.jpg"))[:3]


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


def reference_captions(model_dir, images: list[str], **generate_kwargs) -> list[str]:
    """What the model itself writes for each image, one at a time, without the CLI."""
    model = ShowAttendTellForConditionalGeneration.from_pretrained(model_dir).eval()
    processor = ShowAttendTellProcessor.from_pretrained(model_dir)
    captions = []
    for image in images:
        with torch.no_grad():
            sequences = model.generate(processor(images=image)["pixel_values"], **generate_kwargs)
        captions.append(processor.batch_decode(sequences)[0])
    return captions


def test_caption_prints_path_tab_caption_per_image(capsys, tiny_model_dir, photos):
    status = main(
        ["caption", *photos, "--model", str(tiny_model_dir), "--num-beams", "2", "--max-new-tokens", "5"]
        + ["--batch-size", "2"]  # two batches: 2 images, then 1
    )

    out, err = capsys.readouterr()
    assert status == 0, err
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == photos
    printed = [line.split("\t", 1)[1] for line in lines]
    assert printed == reference_captions(tiny_model_dir, photos, num_beams=2, max_new_tokens=5)
    assert all(0 < len(caption.split()) <= 5 for caption in printed)


def test_attention_figures_and_gifs_are_named_after_the_images(capsys, tmp_path, tiny_model_dir, photos):
    out_dir = tmp_path / "figures" / "nested"
    images = [photos[0], photos[1], photos[0]]  # the repeated photo gets its own, distinct file name
    status = main(
        ["caption", *images, "--model", str(tiny_model_dir), "--num-beams", "1", "--max-new-tokens", "4"]
        + ["--attention-dir", str(out_dir), "--gif", "--columns", "2"]
    )

    out, err = capsys.readouterr()
    assert status == 0, err
    captions = [line.split("\t", 1)[1] for line in out.splitlines()]
    stems = [os.path.splitext(os.path.basename(path))[0] for path in images]
    names = [stems[0], stems[1], f"{stems[0]}-2"]
    assert sorted(path.name for path in out_dir.iterdir()) == sorted(
        [f"{name}.png" for name in names] + [f"{name}.gif" for name in names]
    )
    for name, caption in zip(names, captions, strict=True):
        assert Image.open(out_dir / f"{name}.gif").n_frames == len(caption.split())  # one frame per word
        png = Image.open(out_dir / f"{name}.png")
        assert png.format == "PNG" and png.width == 2 * 300  # 2 columns of 3-inch panels at 100 dpi


def test_console_script_runs_in_a_fresh_process(tiny_model_dir, photos):
    script = shutil.which("show-attend-tell")
    assert script, "the console script is missing: pip install -e . declares it in pyproject.toml"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [script, "caption", photos[0], "--model", str(tiny_model_dir), "--num-beams", "3", "--max-new-tokens", "4"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    expected = reference_captions(tiny_model_dir, photos[:1], num_beams=3, max_new_tokens=4)[0]
    assert done.stdout == f"{photos[0]}\t{expected}\n"
    assert done.stderr == ""


def not_a_model_folder(tmp_path):
    folder = tmp_path / "bert"
    BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=37).save_pretrained(folder)
    return folder


def folder_without_weights(tmp_path, tiny_model_dir):
    folder = tmp_path / "no_weights"
    folder.mkdir()
    shutil.copy(tiny_model_dir / "config.json", folder / "config.json")
    for code in tiny_model_dir.glob("*.py"):
        shutil.copy(code, folder / code.name)
    return folder


BROKEN_FOLDERS = (
    "only a pickle",
    "vocab_size edited",
    "truncated weights",
    "no tokenizer_config.json",
    "another folder's tokenizer",
)


def broken_copy(tmp_path, tiny_model_dir, case: str):
    """A copy of the tiny model folder broken the way `case` says."""
    folder = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, folder)
    if case == "only a pickle":
        (folder / "model.safetensors").unlink()
        (folder / "pytorch_model.bin").write_bytes(b"\x80\x04K\x01.")  # never unpickled
    elif case == "vocab_size edited":
        config = json.loads((folder / "config.json").read_text())
        config["vocab_size"] += 5
        (folder / "config.json").write_text(json.dumps(config))
    elif case == "truncated weights":
        weights = (folder / "model.safetensors").read_bytes()
        (folder / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    elif case == "no tokenizer_config.json":
        (folder / "tokenizer_config.json").unlink()
    elif case == "another folder's tokenizer":
        processor = ShowAttendTellProcessor.from_pretrained(tiny_model_dir)
        other = ShowAttendTellProcessor(processor.image_processor, build_tokenizer(["entirely other words"]))
        other.save_pretrained(folder)
    return folder


def decompression_bomb(tmp_path):
    """A PNG whose header claims 50000x50000 pixels."""
    path = tmp_path / "bomb.png"
    Image.new("RGB", (10, 10)).save(path)
    data = bytearray(path.read_bytes())
    header = struct.pack(">II", 50000, 50000) + bytes(data[24:29])
    data[16:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing image", "image file not found: {image}"),
        ("decompression bomb", "not an image file: {image} (Image size (2500000000 pixels) exceeds limit"),
        ("only a pickle", "--model {model}: incomplete or broken folder: Error no file named model.safetensors"),
        ("vocab_size edited", "--model {model}: the weights do not fit the model that config.json describes"),
        ("truncated weights", "--model {model}: incomplete or broken folder: Error while deserializing header"),
        ("no tokenizer_config.json", "--model {model}: incomplete or broken folder: tokenizer: ["),
        ("another folder's tokenizer", "--model {model}: the tokenizer has 7 tokens but the model's config.vocab_size"),
        ("directory as image", "not an image file: {image} is a directory"),
        ("text file as image", "not an image file: {image}"),
        ("missing model folder", "--model {model}: model folder not found"),
        ("file as model", "--model {model}: not a folder"),
        ("folder without config.json", "--model {model}: no config.json"),
        ("another model type", "--model {model}: a 'bert' model, not a Show-Attend-Tell model"),
        ("folder without weights", "--model {model}: incomplete or broken folder"),
        ("offline Hub id", "--model {model}: could not load this Hub model"),
        ("gif without attention dir", "--gif needs --attention-dir"),
    ],
)
def test_errors_are_one_clear_line(capsys, tmp_path, offline, tiny_model_dir, photos, case, expected):
    image, model, extra = photos[0], str(tiny_model_dir), []
    if case == "missing image":
        image = str(tmp_path / "missing.jpg")
    elif case == "directory as image":
        image = str(tmp_path)
    elif case == "decompression bomb":
        image = str(decompression_bomb(tmp_path))
    elif case in BROKEN_FOLDERS:
        model = str(broken_copy(tmp_path, tiny_model_dir, case))
    elif case == "text file as image":
        image = str(tmp_path / "notes.jpg")
        (tmp_path / "notes.jpg").write_text("not a picture")
    elif case == "missing model folder":
        model = str(tmp_path / "no-such-model")
    elif case == "file as model":
        model = photos[1]
    elif case == "folder without config.json":
        model = str(tmp_path)
    elif case == "another model type":
        model = str(not_a_model_folder(tmp_path))
    elif case == "folder without weights":
        model = str(folder_without_weights(tmp_path, tiny_model_dir))
    elif case == "offline Hub id":
        model = "show-attend-tell-tests/no-such-model"
    elif case == "gif without attention dir":
        extra = ["--gif"]

    # a good photo first: errors are found before anything is captioned
    status = main(["caption", photos[1], image, "--model", model, "--max-new-tokens", "3", *extra])

    out, err = capsys.readouterr()
    assert status == 2
    assert out == ""
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("show-attend-tell caption: error: ")
    assert expected.format(image=image, model=model) in err


def test_corrupt_image_after_a_valid_header_is_a_clear_error(capsys, tmp_path, tiny_model_dir, photos):
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(open(photos[0], "rb").read()[:600])  # JPEG header intact, image data cut off
    status = main(["caption", str(truncated), "--model", str(tiny_model_dir), "--max-new-tokens", "3"])
    out, err = capsys.readouterr()
    assert status == 2 and out == ""
    assert err.count("\n") == 1 and str(truncated) in err and "not a readable image" in err


@pytest.mark.parametrize("option", ["--num-beams", "--max-new-tokens", "--batch-size"])
def test_non_positive_numbers_are_usage_errors(capsys, photos, option):
    with pytest.raises(SystemExit) as exit_info:
        main(["caption", photos[0], "--model", "m", option, "0"])
    assert exit_info.value.code == 2
    assert f"{option}: expected a positive integer, got 0" in capsys.readouterr().err


def test_subcommands_come_from_the_registry(monkeypatch, capsys):
    assert "caption" in cli.COMMANDS

    def add_echo_parser(subparsers):
        parser = subparsers.add_parser("echo", help="print the words")
        parser.add_argument("words", nargs="+")
        parser.set_defaults(run=lambda args: print(json.dumps(args.words)) or 0)
        return parser

    monkeypatch.setattr(cli, "COMMANDS", dict(cli.COMMANDS))  # the test's command does not outlive the test
    cli.command("echo")(add_echo_parser)
    assert main(["echo", "a", "b"]) == 0
    assert json.loads(capsys.readouterr().out) == ["a", "b"]
    assert "echo" in build_parser().format_help() and "caption" in build_parser().format_help()
    monkeypatch.undo()
    assert "echo" not in build_parser().format_help()

    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
