"""The offline ImageNet weights (EfficientNet-Lite0/1/2) are real: a pretrained classifier recognises real photos."""

from __future__ import annotations

import pytest
import timm
import torch

from show_attend_tell import (
    ShowAttendTellConfig,
    ShowAttendTellForConditionalGeneration,
    build_image_processor,
    load_image,
)
from show_attend_tell.backbones import create_pretrained_classifier, load_pretrained_backbone

ZEBRA, PIZZA = 340, 963  # ImageNet class indices


@pytest.mark.parametrize("backbone", ["tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"])
@pytest.mark.parametrize(("file_name", "label"), [("000000281789.jpg", ZEBRA), ("000000121647.jpg", PIZZA)])
def test_offline_pretrained_classifier_recognises_real_photos(coco_mini, backbone, file_name, label):
    classifier = create_pretrained_classifier(backbone)
    processor = build_image_processor(backbone, 224)
    pixel_values = processor(load_image(coco_mini / "train" / file_name), return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        probabilities = classifier(pixel_values).softmax(-1)[0]
    # lite1 ranks this pizza third after trifle and meat loaf; random weights give 1,000 near-equal classes
    assert label in probabilities.topk(3).indices.tolist()
    assert probabilities[label] > 0.1


def test_pretrained_backbone_survives_save_and_from_pretrained(tmp_path):
    config = ShowAttendTellConfig(image_size=64, attention_dim=16, embed_dim=16, decoder_dim=16, vocab_size=10)
    model = ShowAttendTellForConditionalGeneration(config)
    load_pretrained_backbone(model.encoder.backbone, config.backbone)
    reference = timm.create_model("tf_efficientnet_lite0", features_only=True, out_indices=(-1,))
    load_pretrained_backbone(reference, "tf_efficientnet_lite0")
    expected = reference.state_dict()
    model.save_pretrained(tmp_path)
    loaded = ShowAttendTellForConditionalGeneration.from_pretrained(tmp_path)
    for name, tensor in loaded.encoder.backbone.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], msg=name)


def test_new_model_keeps_timm_initialisation_of_the_backbone():
    torch.manual_seed(0)
    model = ShowAttendTellForConditionalGeneration(ShowAttendTellConfig(backbone="resnet10t", vocab_size=10))
    torch.manual_seed(0)
    timm_only = timm.create_model("resnet10t", pretrained=False, features_only=True, out_indices=(-1,))
    for name, tensor in timm_only.state_dict().items():
        torch.testing.assert_close(model.encoder.backbone.state_dict()[name], tensor, msg=name)
