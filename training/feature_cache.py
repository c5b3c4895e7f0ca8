"""On-disk cache of frozen-encoder features, so the decoder trains without running the CNN at every step.

While the encoder is frozen, the backbone's region features of an image never change: they are computed once per
image (eval mode, no gradients, float32) and stored as safetensors shards under
`CACHE_ROOT/<key>/features-00000.safetensors, ...` plus a `manifest.json`. The key hashes everything the features
depend on: the backbone name, the exact backbone weights (so pretrained and randomly initialised encoders never mix),
the image processor settings (image size, normalisation) and the data set's fingerprint. Shards are memory-mapped, so
data sets larger than RAM work. A cache folder appears only once complete (written to a temporary folder, then
renamed), so an interrupted run never leaves a half-written cache behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
CACHE_FORMAT_VERSION = 1


def weights_fingerprint(module: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, dtypes, shapes and values)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def cache_key(backbone_name: str, backbone: nn.Module, image_processor: Any, dataset_fingerprint: str) -> str:
    """Name of the cache folder of one data set split under one frozen encoder."""
    identity = {
        "version": CACHE_FORMAT_VERSION,
        "backbone": backbone_name,
        "weights": weights_fingerprint(backbone),
        # Which feature map: timm's features_only backbones keep the same weights for every `out_indices`.
        "feature_map": getattr(getattr(backbone, "feature_info", None), "out_indices", None),
        # What turns an image into pixels; not where the class lives (a saved folder's processor adds `auto_map`).
        "image_processor": {name: value for name, value in image_processor.to_dict().items() if name != "auto_map"},
        "dataset": dataset_fingerprint,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return f"{backbone_name}-{digest}"


class FeatureCache:
    """Read-only, memory-mapped region features: `cache[indices]` -> `(len(indices), num_regions, encoder_dim)`."""

    def __init__(self, directory: str | os.PathLike):
        self.directory = Path(directory)
        manifest_path = self.directory / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{self.directory} is not a complete feature cache (no {MANIFEST})")
        self.manifest = json.loads(manifest_path.read_text())
        self.shard_size = self.manifest["shard_size"]
        self._shards = [safe_open(self.directory / name, framework="pt") for name in self.manifest["shards"]]
        self._slices = [shard.get_slice("features") for shard in self._shards]

    def __len__(self) -> int:
        return self.manifest["num_images"]

    @property
    def feature_shape(self) -> tuple[int, int]:
        return tuple(self.manifest["feature_shape"])

    def __getitem__(self, indices: int | Sequence[int]) -> torch.Tensor:
        if isinstance(indices, int):
            return self[[indices]][0]
        rows = []
        for index in indices:
            index = int(index)
            if not 0 <= index < len(self):
                raise IndexError(f"Image index {index} out of range for a feature cache of {len(self)} images")
            shard, offset = divmod(index, self.shard_size)
            rows.append(self._slices[shard][offset : offset + 1])
        return torch.cat(rows)


@torch.no_grad()
def compute_features(model, processor, images: Sequence[Any]) -> torch.Tensor:
    """Backbone region features of `images` (float32, eval mode), `(len(images), num_regions, encoder_dim)`."""
    was_training = model.training
    model.eval()
    try:
        pixel_values = processor(images=list(images))["pixel_values"].to(model.device, torch.float32)
        return model.encoder.backbone_features(pixel_values).float().cpu()
    finally:
        model.train(was_training)


def build_feature_cache(
    model,
    processor,
    dataset,
    cache_root: str | os.PathLike,
    *,
    dataset_fingerprint: str,
    batch_size: int = 64,
    shard_size: int = 1024,
    progress: bool = True,
) -> FeatureCache:
    """Open the cache of `dataset` (a `datasets.Dataset` with an `image` column) for `model`'s frozen backbone,
    computing it first when missing.

    In multi-process runs call it under `accelerator.main_process_first()`: the main process computes, the others
    then find the finished cache.
    """
    backbone_name = model.config.backbone
    key = cache_key(backbone_name, model.encoder.backbone, processor.image_processor, dataset_fingerprint)
    directory = Path(cache_root) / key
    if (directory / MANIFEST).is_file():
        cache = FeatureCache(directory)
        if len(cache) == len(dataset):
            logger.info(f"Using cached encoder features in {directory}")
            return cache
        logger.warning(f"Feature cache {directory} holds {len(cache)} images, expected {len(dataset)}: rebuilding it")
        shutil.rmtree(directory)

    temporary = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    shards, feature_shape = [], None
    # leave=False: once the cache is built, the training progress bar is the only one left on the screen
    with tqdm(
        total=len(dataset), desc="Caching encoder features", unit="img", disable=not progress, leave=False
    ) as bar:
        for shard_start in range(0, len(dataset), shard_size):
            shard_end = min(shard_start + shard_size, len(dataset))
            parts = []
            for start in range(shard_start, shard_end, batch_size):
                images = dataset[start : min(start + batch_size, shard_end)]["image"]
                parts.append(compute_features(model, processor, images))
                bar.update(len(images))
            features = torch.cat(parts)
            feature_shape = list(features.shape[1:])
            name = f"features-{len(shards):05d}.safetensors"
            save_file({"features": features.contiguous()}, temporary / name)
            shards.append(name)
    manifest = {
        "version": CACHE_FORMAT_VERSION,
        "backbone": backbone_name,
        "num_images": len(dataset),
        "shard_size": shard_size,
        "feature_shape": feature_shape,
        "dataset_fingerprint": dataset_fingerprint,
        "shards": shards,
    }
    (temporary / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(temporary, directory)
    logger.info(f"Cached encoder features of {len(dataset)} images in {directory}")
    return FeatureCache(directory)


__all__ = ["FeatureCache", "build_feature_cache", "cache_key", "compute_features", "weights_fingerprint"]
