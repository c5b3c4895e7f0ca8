"""Fixtures for the publishing tests: a tiny model that has memorised the captions of two real photos (so the handler,
the Space and the card can be checked against known captions) and the photos, whose licences allow publishing an
adapted figure with credit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from show_attend_tell import ShowAttendTellEncoderOutput
from tests.conftest import make_tiny, read_metadata

OPEN_LICENCES = {"Attribution License", "Attribution-ShareAlike License"}


def open_licence_rows(coco_mini: Path, split: str = "train", count: int = 2) -> list[dict]:
    """The first `count` metadata rows of `split` whose photo is CC BY or CC BY-SA (coco-mini/provenance.jsonl)."""
    provenance = [json.loads(line) for line in (coco_mini / "provenance.jsonl").read_text().splitlines() if line]
    allowed = {row["file_name"] for row in provenance if row["split"] == split and row["license"] in OPEN_LICENCES}
    rows = [row for row in read_metadata(coco_mini / split) if row["file_name"] in allowed][:count]
    assert len(rows) == count, f"coco-mini {split} needs {count} CC BY / CC BY-SA photos"
    return rows


@pytest.fixture(scope="session")
def memorised(coco_mini) -> list[dict]:
    """Two real photos (`path`) with the caption the memorised model writes for each (`caption`)."""
    rows = open_licence_rows(coco_mini)
    return [{"path": row["path"], "caption": " ".join(row["captions"][0].lower().strip(" .").split())} for row in rows]


@pytest.fixture(scope="session")
def memorised_model_dir(tmp_path_factory, memorised) -> Path:
    """A saved tiny model whose decoder was trained until it writes `memorised[i]["caption"]` for photo i."""
    captions = [row["caption"] for row in memorised]
    model, processor = make_tiny(captions, dropout=0.0, alpha_c=0.0)
    model.freeze_encoder(trainable_blocks=0)
    batch = processor(images=[row["path"] for row in memorised], text=captions)
    with torch.no_grad():  # the frozen CNN runs once; only the decoder learns
        features = model.encoder.backbone_features(batch["pixel_values"])
    encoder_outputs = ShowAttendTellEncoderOutput(last_hidden_state=features)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(encoder_outputs=encoder_outputs, labels=batch["labels"]).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if loss.item() < 0.02:
            break
    model.eval()
    directory = tmp_path_factory.mktemp("memorised_model")
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory
