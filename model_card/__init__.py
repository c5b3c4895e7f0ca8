"""Publishing a trained Show-Attend-Tell model: model card generator, Inference Endpoints handler, Gradio Space demo."""

from .generator import Photo, photo_credit, validate_model_card, write_model_card

__all__ = ["Photo", "photo_credit", "validate_model_card", "write_model_card"]
