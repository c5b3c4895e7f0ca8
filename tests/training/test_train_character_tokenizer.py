"""Training with `--tokenizer_segmentation character`: captions in a script written without spaces (and emoji) become
one token per character, and the saved processor decodes them back unchanged."""

from __future__ import annotations

import json

from PIL import Image
from transformers import AutoProcessor

from tests.training.train_utils import TINY_ARGS, run_training

CAPTIONS = ["红色的正方形", "蓝色的圆形 🔵", "绿色的三角形", "黄色的星星 ⭐"]
COLOURS = ["red", "blue", "green", "yellow"]


def write_imagefolder(root, split: str, copies: int) -> None:
    folder = root / split
    folder.mkdir(parents=True)
    rows = []
    for index in range(copies * len(CAPTIONS)):
        name = f"{split}_{index}.png"
        Image.new("RGB", (48, 48), COLOURS[index % len(COLOURS)]).save(folder / name)
        rows.append({"file_name": name, "captions": [CAPTIONS[index % len(CAPTIONS)]]})
    (folder / "metadata.jsonl").write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))


def test_character_segmentation_trains_and_is_saved_with_the_processor(tmp_path):
    data = tmp_path / "data"
    write_imagefolder(data, "train", copies=2)
    write_imagefolder(data, "validation", copies=1)
    output_dir = tmp_path / "run"
    run_training(
        *TINY_ARGS,
        "--dataset_name", data,
        "--tokenizer_segmentation", "character",
        "--num_train_epochs", 1,
        "--output_dir", output_dir,
    )  # fmt: skip

    processor = AutoProcessor.from_pretrained(output_dir, trust_remote_code=True)
    vocabulary = processor.tokenizer.get_vocab()
    assert {"红", "正", "方", "形", "🔵", "⭐", "\u2581"} <= vocabulary.keys()
    assert "红色的正方形" not in vocabulary  # not one token per caption, as word segmentation would make it
    labels = processor(text=CAPTIONS)["labels"]
    assert processor.batch_decode(labels) == CAPTIONS
