"""Show, Attend and Tell: a Hugging Face-native image captioner with visual attention (Xu et al. 2015)."""

from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor

from .configuration_show_attend_tell import ShowAttendTellConfig
from .modeling_show_attend_tell import (
    ShowAttendTellCache,
    ShowAttendTellDecoderStepOutput,
    ShowAttendTellEncoderOutput,
    ShowAttendTellForConditionalGeneration,
    ShowAttendTellOutput,
)
from .pipeline_show_attend_tell import (
    Caption,
    ModelFolderError,
    ShowAttendTellCaptioningPipeline,
    caption_images,
    load_captioner,
)
from .processing_show_attend_tell import (
    ShowAttendTellProcessor,
    build_image_processor,
    build_tokenizer,
    load_image,
)

# `save_pretrained` writes `auto_map` and copies the code files, so folders load anywhere with trust_remote_code.
ShowAttendTellConfig.register_for_auto_class()
ShowAttendTellForConditionalGeneration.register_for_auto_class("AutoModel")
ShowAttendTellProcessor.register_for_auto_class("AutoProcessor")
# In-process use without trust_remote_code.
AutoConfig.register("show_attend_tell", ShowAttendTellConfig, exist_ok=True)
AutoModel.register(ShowAttendTellConfig, ShowAttendTellForConditionalGeneration, exist_ok=True)
AutoModelForImageTextToText.register(ShowAttendTellConfig, ShowAttendTellForConditionalGeneration, exist_ok=True)
AutoProcessor.register(ShowAttendTellConfig, ShowAttendTellProcessor, exist_ok=True)

__version__ = "0.1.0"

__all__ = [
    "Caption",
    "ModelFolderError",
    "ShowAttendTellCache",
    "ShowAttendTellCaptioningPipeline",
    "ShowAttendTellConfig",
    "ShowAttendTellDecoderStepOutput",
    "ShowAttendTellEncoderOutput",
    "ShowAttendTellForConditionalGeneration",
    "ShowAttendTellOutput",
    "ShowAttendTellProcessor",
    "build_image_processor",
    "build_tokenizer",
    "caption_images",
    "load_captioner",
    "load_image",
]
