"""Validation during training: free-running captions (beam search as configured, never teacher forcing) scored with
the COCO caption metrics, plus the teacher-forced loss on the validation captions."""

from __future__ import annotations

import math
from dataclasses import replace

import torch
from accelerate.utils import broadcast_object_list, gather_object

from show_attend_tell import Caption, ShowAttendTellEncoderOutput, caption_images
from show_attend_tell.evaluation import score_captions
from show_attend_tell.pipeline_show_attend_tell import caption_batch


def decoding_kwargs(
    num_beams: int,
    max_new_tokens: int,
    length_penalty: float,
    unk_token_id: int | None = None,
    no_repeat_ngram_size: int = 0,
) -> dict:
    """`generate()` settings of validation (and of the saved `generation_config.json`). A captioner never writes the
    unknown-word token: `suppress_tokens` (transformers' documented generation option, honoured by the ONNX and
    browser runtimes too) makes it pick the best known word instead. Kept, `<unk>` was dropped from the decoded text
    and left broken captions ("a man is holding a"), and SCST rewarded samples for matching the references' `<unk>`."""
    kwargs = {"num_beams": num_beams, "max_new_tokens": max_new_tokens}
    if unk_token_id is not None:
        kwargs["suppress_tokens"] = [unk_token_id]
    if no_repeat_ngram_size:
        kwargs["no_repeat_ngram_size"] = no_repeat_ngram_size
    if num_beams > 1:
        kwargs["length_penalty"] = length_penalty
    return kwargs


def encoder_inputs(model, batch: dict[str, torch.Tensor], frozen_encoder: bool) -> dict:
    """The model's image inputs for one batch: cached `features`, frozen-encoder features computed without
    gradients, or `pixel_values` (end to end) when encoder blocks are being fine-tuned."""
    if "features" in batch:
        features = batch["features"]
    elif frozen_encoder:
        # Outside autocast and in float32, exactly like the feature cache, so cache and no cache train the same model.
        encoder = getattr(model, "module", model).encoder
        with torch.no_grad():
            features = encoder.backbone_features(batch["pixel_values"].float())
    else:
        return {"pixel_values": batch["pixel_values"]}
    return {"encoder_outputs": ShowAttendTellEncoderOutput(last_hidden_state=features)}


def model_loss(model, batch: dict[str, torch.Tensor], frozen_encoder: bool) -> torch.Tensor:
    """Teacher-forced loss of one batch (image inputs as `encoder_inputs` gives them)."""
    return model(**encoder_inputs(model, batch, frozen_encoder), labels=batch["labels"]).loss


@torch.no_grad()
def validation_loss(accelerator, model, dataloader, frozen_encoder: bool) -> float:
    """Mean teacher-forced loss over all validation (image, caption) pairs, across processes."""
    model.eval()
    losses = []
    for batch in dataloader:
        loss = model_loss(model, batch, frozen_encoder)
        losses.append(accelerator.gather_for_metrics(loss.detach().float().repeat(len(batch["labels"]))))
    return float(torch.cat(losses).mean()) if losses else math.nan


def caption_metrics(
    accelerator, model, processor, dataset, batch_size: int, decoding: dict, features=None
) -> tuple[dict[str, float], dict[str, str]]:
    """Caption every validation image (each process a share) and score the captions against their references on the
    main process (the library's `score_captions`, caption metrics only).

    `features`: the validation images' cached backbone features (a `FeatureCache`, row `i` for image `i`) while the
    encoder is frozen; captions are then decoded from them instead of running the CNN again.
    Returns `(metrics, predictions)` on every process (`predictions`: image id -> caption)."""
    unwrapped = accelerator.unwrap_model(model)
    unwrapped.eval()
    with accelerator.split_between_processes(list(range(len(dataset)))) as shard:
        if features is None:
            images = dataset.select(shard)["image"] if shard else []
            generated = (
                caption_images(unwrapped, processor, images, batch_size=batch_size, **decoding) if images else []
            )
        else:
            generated = captions_from_features(unwrapped, processor, features, shard, batch_size, decoding)
        # Captions travel between processes without their photos.
        local = [(index, replace(caption, image=None)) for index, caption in zip(shard, generated, strict=True)]
    gathered = gather_object(local)
    references = dataset.select_columns(["image_id", "captions"]).to_list()
    predictions = {references[index]["image_id"]: caption.text for index, caption in gathered}
    result = [None]
    if accelerator.is_main_process:
        rows = [references[index] for index, _ in gathered]
        result = [score_captions(rows, [caption for _, caption in gathered]).metrics]
    broadcast_object_list(result)
    return result[0], predictions


def captions_from_features(
    model, processor, features, indices: list[int], batch_size: int, decoding: dict
) -> list[Caption]:
    """Captions of the images at `indices`, generated from their cached backbone features (`caption_batch`)."""
    captions = []
    for start in range(0, len(indices), batch_size):
        regions = features[indices[start : start + batch_size]].to(model.device, model.dtype)
        encoder_outputs = ShowAttendTellEncoderOutput(last_hidden_state=regions)
        captions += caption_batch(model, processor, encoder_outputs=encoder_outputs, **decoding)
    return captions


__all__ = [
    "caption_metrics",
    "captions_from_features",
    "decoding_kwargs",
    "encoder_inputs",
    "model_loss",
    "validation_loss",
]
