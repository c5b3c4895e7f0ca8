"""Shared fixtures: paths to the real photos in ../shared/data and tiny models that build in well under a second."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from show_attend_tell import (
    ShowAttendTellConfig,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
COCO_MINI = SHARED_DATA / "coco-mini"
FLICKR8K_MINI = SHARED_DATA / "flickr8k-mini"

# The interpreter of the "fresh process" that loads saved folders with remote code only. CI's compatibility leg points
# it at a virtual environment with another transformers release, so folders saved here are loaded under that release.
REMOTE_CODE_PYTHON = os.environ.get("SAT_REMOTE_CODE_PYTHON") or sys.executable

# Tiny models gain nothing from intra-op threads, and spinning OpenMP threads slow tiny ops down badly when the
# two cores are shared; subprocesses started by tests inherit the setting.
os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)


def read_metadata(split_dir: Path) -> list[dict]:
    """Rows of an imagefolder split's metadata.jsonl, with `path` added."""
    rows = [json.loads(line) for line in (split_dir / "metadata.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        row["path"] = split_dir / row["file_name"]
    return rows


def generated_rows(eos: int) -> np.ndarray:
    """Generated ids (rows, 12) over a vocabulary of 6 whose captions end anywhere: at the first token, in the middle,
    with a second end token behind the first, or never."""
    rows = np.random.default_rng(0).integers(0, 6, (200, 12))
    rows[:20] = np.where(rows[:20] == eos, eos + 1, rows[:20])  # no end token
    rows[20, 0] = eos
    return rows


def tiny_config(vocab_size: int, **overrides) -> ShowAttendTellConfig:
    """A Show-Attend-Tell config small enough for CPU unit tests (resnet10t backbone, 64 px images, 2x2 grid)."""
    values = dict(
        backbone="resnet10t", image_size=64, attention_dim=32, embed_dim=32, decoder_dim=48, vocab_size=vocab_size
    )
    values.update(overrides)
    return ShowAttendTellConfig(**values)


def make_tiny(captions: list[str], seed: int = 0, **overrides):
    """(model, processor) with a tokenizer built from `captions` and a randomly initialised tiny model."""
    tokenizer = build_tokenizer(captions)
    config = tiny_config(len(tokenizer), **overrides)
    torch.manual_seed(seed)
    model = ShowAttendTellForConditionalGeneration(config).eval()
    processor = ShowAttendTellProcessor(build_image_processor(config.backbone, config.image_size), tokenizer)
    return model, processor


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    if not COCO_MINI.is_dir():
        pytest.fail(f"Real test photos missing: {COCO_MINI} (CI clones the repo with ../shared beside it)")
    return COCO_MINI


@pytest.fixture(scope="session")
def coco_train_rows(coco_mini: Path) -> list[dict]:
    return read_metadata(coco_mini / "train")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, coco_train_rows) -> Path:
    """A saved, randomly initialised tiny model + processor (tokenizer from coco-mini train captions)."""
    captions = [caption for row in coco_train_rows for caption in row["captions"]]
    model, processor = make_tiny(captions)
    directory = tmp_path_factory.mktemp("tiny_model")
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def pytest_configure(config):
    # Marks of transformers' common model tests (tests/show_attend_tell/test_transformers_common.py), declared by
    # transformers' own conftest, which does not come with them.
    for mark in (
        "accelerate_tests",
        "flash_attn_test",
        "flash_attn_3_test",
        "flash_attn_4_test",
        "torch_compile_test",
        "torch_export_test",
    ):
        config.addinivalue_line("markers", f"{mark}: a mark of transformers' common model tests")
