"""Training examples and batches: every (image, caption) pair is one example.

`CaptionPairs` lists the pairs of a canonical caption data set; `CaptionCollator` turns a list of pairs into a batch
with `labels` and either the images' `pixel_values` or, while the encoder is frozen and a feature cache is attached,
their cached region `features`. The same data loader (same sampler, same order) serves both, so switching between
the cache and the images changes nothing but the speed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import Dataset, IterableDataset

from .feature_cache import FeatureCache


class CaptionPairs(Dataset):
    """One item per (image, caption) pair: `{"image_index": int, "caption": str}`, images in data set order."""

    def __init__(self, captions: Sequence[Sequence[str]]):
        self.pairs = [(index, caption) for index, image_captions in enumerate(captions) for caption in image_captions]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict[str, Any]:
        image_index, caption = self.pairs[index]
        return {"image_index": image_index, "caption": caption}


class StreamingCaptionPairs(IterableDataset):
    """The pairs of a streamed data set (`datasets.IterableDataset`): `{"image": PIL image, "caption": str}`, passing
    over the stream again (next epoch of its shuffling) whenever it ends, so training runs for --max_train_steps."""

    def __init__(self, stream):
        self.stream = stream

    def __iter__(self):
        epoch = 0
        while True:
            self.stream.set_epoch(epoch)
            empty = True
            for row in self.stream:
                for caption in row["captions"]:
                    empty = False
                    yield {"image": row["image"], "caption": caption}
            if empty:
                raise ValueError("The training stream has no examples")
            epoch += 1


class CaptionCollator:
    """Batch of pairs -> `{"labels", "pixel_values"}`, or `{"labels", "features"}` when `features` is set, plus the
    pairs' `image_index` (not for streamed pairs).

    Args:
        processor: the `ShowAttendTellProcessor` (tokenizer and image processor).
        images: the data set's `image` column source (`datasets.Dataset` with an `image` column), indexed by
            `image_index`.
        features: a `FeatureCache` of the same images, used instead of `images` when set.
        max_length: truncate captions to this many tokens (`<eos>` included).
    """

    def __init__(self, processor, images=None, features: FeatureCache | None = None, max_length: int | None = None):
        self.processor = processor
        self.images = images
        self.features = features
        self.max_length = max_length

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {
            "labels": self.processor.encode_captions([item["caption"] for item in items], max_length=self.max_length)
        }
        if "image" in items[0]:  # streamed pairs carry their image
            images = [item["image"] for item in items]
        else:
            # The image of each pair (self-critical training looks up the image's references by it).
            batch["image_index"] = torch.tensor([item["image_index"] for item in items])
            if self.features is not None:
                batch["features"] = self.features[batch["image_index"].tolist()]
                return batch
            images = self.images[batch["image_index"].tolist()]["image"]
        batch["pixel_values"] = self.processor(images=images)["pixel_values"]
        return batch


__all__ = ["CaptionCollator", "CaptionPairs", "StreamingCaptionPairs"]
