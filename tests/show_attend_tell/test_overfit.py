"""The model memorises 8 real photos: greedy and beam search then reproduce the training captions exactly."""

from __future__ import annotations

import torch

from show_attend_tell import (
    ShowAttendTellConfig,
    ShowAttendTellEncoderOutput,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
)
from show_attend_tell.backbones import load_pretrained_backbone


def test_overfits_eight_real_photos(coco_train_rows):
    rows = coco_train_rows[:8]
    captions = [row["captions"][0] for row in rows]
    tokenizer = build_tokenizer(captions)
    config = ShowAttendTellConfig(
        image_size=128, attention_dim=64, embed_dim=64, decoder_dim=128, dropout=0.1, vocab_size=len(tokenizer)
    )
    torch.manual_seed(0)
    model = ShowAttendTellForConditionalGeneration(config)
    load_pretrained_backbone(model.encoder.backbone, config.backbone)
    model.freeze_encoder(trainable_blocks=0)
    processor = ShowAttendTellProcessor(build_image_processor(config.backbone, config.image_size), tokenizer)
    batch = processor(images=[row["path"] for row in rows], text=captions)
    with torch.no_grad():  # the frozen CNN runs once; the decoder trains on its features
        features = model.encoder.backbone_features(batch["pixel_values"])

    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    model.train()
    for _ in range(300):
        loss = model(
            encoder_outputs=ShowAttendTellEncoderOutput(last_hidden_state=features), labels=batch["labels"]
        ).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()

    expected = processor.batch_decode(processor.tokenizer(captions, padding=True, return_tensors="pt")["input_ids"])
    greedy = processor.batch_decode(model.generate(batch["pixel_values"], num_beams=1, max_new_tokens=30))
    beam = processor.batch_decode(model.generate(batch["pixel_values"], num_beams=3, max_new_tokens=30))
    assert greedy == expected
    assert beam == expected
