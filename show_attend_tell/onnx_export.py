"""Export a saved Show-Attend-Tell folder to ONNX: `onnx/encoder_model.onnx` and `onnx/decoder_model.onnx`.

    from show_attend_tell.onnx_export import export_onnx

    report = export_onnx("runs/coco-mini", verify_images=["photo.jpg"], quantize=True)

- Encoder: `pixel_values (images, 3, H, W)` -> `regions (images, R, encoder_dim)`, `projected_regions (images, R,
  attention_dim)` (the attention's `W_a a_i`) and the initial LSTM state `hidden`, `cell (images, decoder_dim)`.
- Decoder, one step for `rows` sequences (images x beams; the caller repeats each image's regions per row):
  `input_ids (rows,)`, `hidden`, `cell`, `regions`, `projected_regions` -> `logits (rows, vocab)`, the new `hidden`
  and `cell`, `alpha (rows, R)` (attention weights) and `gate (rows,)` (the mean of beta, as `generate()`'s gates).
- `onnx/captioner.json`: token ids, vocabulary, generation defaults, region grid and image preprocessing for the
  runtimes (`show_attend_tell_onnx` in Python, `model_card/web/` in the browser).

The graphs come from `torch.onnx.export(..., dynamo=True)` (the legacy TorchScript exporter produced a backbone graph
whose outputs differed by up to 17), are checked with the `onnx` checker and always verified numerically against the
PyTorch model (`verify_onnx`): logits and attention of the same steps, and greedy and beam captions of
`generate()`. The decoder graph is the model's own `decoder_step`; the wrapper only names its inputs and outputs.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .modeling_show_attend_tell import ShowAttendTellForConditionalGeneration
from .processing_show_attend_tell import ShowAttendTellProcessor

OPSET = 18  # supported by onnxruntime >= 1.14 and onnxruntime-web >= 1.14
ENCODER_OUTPUTS = ["regions", "projected_regions", "hidden", "cell"]
DECODER_INPUTS = ["input_ids", "hidden", "cell", "regions", "projected_regions"]
DECODER_OUTPUTS = ["logits", "hidden_out", "cell_out", "alpha", "gate"]
# generation_config.json options the ONNX runtimes implement; any other option set to a non-default value would make
# their captions differ from generate()'s, so export refuses it.
SUPPORTED_GENERATION = {
    "num_beams", "max_new_tokens", "max_length", "length_penalty", "early_stopping", "do_sample", "eos_token_id",
    "pad_token_id", "bos_token_id", "decoder_start_token_id", "transformers_version", "_from_model_config",
    "output_attentions", "output_hidden_states", "output_scores", "output_logits", "return_dict_in_generate",
    "use_cache", "num_return_sequences", "suppress_tokens", "no_repeat_ngram_size",
}  # fmt: skip
LOGIT_TOLERANCE = 1e-2
ATTENTION_TOLERANCE = 1e-3


class OnnxExportError(ValueError):
    """The folder cannot be exported, or the exported graphs do not reproduce the PyTorch model."""


class EncoderForOnnx(nn.Module):
    """Pixels -> region features, their attention projection and the initial LSTM state."""

    def __init__(self, model: ShowAttendTellForConditionalGeneration):
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        regions = self.model.encoder.backbone_features(pixel_values)
        hidden, cell = self.model.initial_state(regions)
        return regions, self.model.encoder.region_projection(regions), hidden, cell


class DecoderStepForOnnx(nn.Module):
    """The model's `decoder_step` with the graph's named inputs and outputs, one row per sequence (each row's own
    copy of its image's regions)."""

    def __init__(self, model: ShowAttendTellForConditionalGeneration):
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        hidden: torch.Tensor,
        cell: torch.Tensor,
        regions: torch.Tensor,
        projected_regions: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        step = self.model.decoder_step(input_ids, (hidden, cell), regions, projected_regions)
        return step.logits, step.hidden, step.cell, step.attentions, step.gates


@dataclass
class OnnxExportReport:
    """What `export_onnx` wrote and measured."""

    onnx_dir: str
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes
    verification: dict[str, Any] = field(default_factory=dict)
    quantized_verification: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_folder(model_dir: str | os.PathLike) -> tuple[ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor]:
    """Model (eval mode) and processor of a saved folder, with errors naming the folder."""
    path = Path(model_dir)
    if not path.is_dir():
        raise OnnxExportError(f"{model_dir}: model folder not found")
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        if not (path / name).is_file():
            raise OnnxExportError(f"{model_dir}: no {name}, so this is not a saved Show-Attend-Tell model folder")
    model = ShowAttendTellForConditionalGeneration.from_pretrained(path).eval()
    processor = ShowAttendTellProcessor.from_pretrained(path)
    processor.check_model_config(model.config)
    return model, processor


def _generation_settings(model: ShowAttendTellForConditionalGeneration) -> dict[str, Any]:
    config = model.generation_config
    defaults = type(config)().to_diff_dict()
    unsupported = sorted(
        key
        for key, value in config.to_diff_dict().items()
        if key not in SUPPORTED_GENERATION and value != defaults.get(key)
    )
    if unsupported or config.do_sample:
        raise OnnxExportError(
            f"generation_config.json sets {unsupported or ['do_sample']}, which the ONNX runtimes do not implement"
        )
    max_new_tokens = config.max_new_tokens or (config.max_length - 1)
    return {
        "num_beams": config.num_beams or 1,
        "max_new_tokens": max_new_tokens,
        "length_penalty": 1.0 if config.length_penalty is None else config.length_penalty,  # transformers' defaults
        "early_stopping": False if config.early_stopping is None else config.early_stopping,
        "suppress_tokens": list(config.suppress_tokens or []),
        "no_repeat_ngram_size": config.no_repeat_ngram_size or 0,
    }


def runtime_config(
    model: ShowAttendTellForConditionalGeneration, processor: ShowAttendTellProcessor, grid: tuple[int, int]
) -> dict[str, Any]:
    """`captioner.json`: what the ONNX runtimes need besides the graphs."""
    tokenizer = processor.tokenizer
    image_processor = processor.image_processor
    vocab = [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    size = image_processor.size
    config = model.config
    return {
        "format": 1,
        "opset": OPSET,
        "grid": list(grid),
        "image": {
            "height": size["height"],
            "width": size["width"],
            "mean": list(image_processor.image_mean),
            "std": list(image_processor.image_std),
            "resample": "bicubic-antialias",
        },
        "decoder_start_token_id": model.generation_config.decoder_start_token_id or config.bos_token_id,
        "eos_token_id": config.eos_token_id,
        "pad_token_id": config.pad_token_id,
        "special_token_ids": sorted(tokenizer.all_special_ids),
        "segmentation": "character" if backend.get("decoder") else "word",
        "vocab": vocab,
        "generation": _generation_settings(model),
        "shapes": {"encoder_dim": config.encoder_dim, "attention_dim": config.attention_dim,
                   "decoder_dim": config.decoder_dim},
    }  # fmt: skip


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str], dynamic: dict) -> None:
    import onnx

    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            args,
            dynamo=True,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_shapes=dynamic,
            external_data=False,
            verbose=False,
        )
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path), full_check=True)


def export_onnx(
    model_dir: str | os.PathLike,
    verify_images: list[Any] | None = None,
    quantize: bool = False,
    num_beams: int = 3,
) -> OnnxExportReport:
    """Write `MODEL_DIR/onnx/` (encoder, decoder step, `captioner.json`, and with `quantize` an int8 dynamically
    quantised decoder), check the graphs and verify them against PyTorch on `verify_images` (paths or PIL images;
    two random images when none are given). Raises `OnnxExportError` when the outputs differ beyond
    `LOGIT_TOLERANCE` / `ATTENTION_TOLERANCE` or greedy captions differ."""
    from torch.export import Dim

    from show_attend_tell_onnx import DECODER_FILE, ENCODER_FILE, QUANTIZED_DECODER_FILE, RUNTIME_CONFIG_FILE

    model, processor = load_folder(model_dir)
    onnx_dir = Path(model_dir) / "onnx"
    onnx_dir.mkdir(exist_ok=True)
    config = model.config
    height, width = processor.image_processor.size["height"], processor.image_processor.size["width"]
    pixels = torch.zeros(2, 3, height, width)
    with torch.no_grad():
        regions, projected, hidden, cell = EncoderForOnnx(model)(pixels)
    grid = tuple(config.grid_size)  # the model's own region grid
    images = Dim("images", min=1, max=4096)
    _export(EncoderForOnnx(model), (pixels,), onnx_dir / ENCODER_FILE, ["pixel_values"], ENCODER_OUTPUTS,
            {"pixel_values": {0: images}})  # fmt: skip
    rows = Dim("rows", min=1, max=65536)
    rows_of = {0: rows}
    step_args = (torch.full((3,), config.bos_token_id), *(t[:1].repeat(3, *[1] * (t.dim() - 1)) for t in
                 (hidden, cell, regions, projected)))  # fmt: skip
    _export(DecoderStepForOnnx(model), step_args, onnx_dir / DECODER_FILE, DECODER_INPUTS, DECODER_OUTPUTS,
            {name: rows_of for name in DECODER_INPUTS})  # fmt: skip
    (onnx_dir / RUNTIME_CONFIG_FILE).write_text(json.dumps(runtime_config(model, processor, grid), indent=1) + "\n")
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        logging.disable(logging.WARNING)  # its advice to run shape inference first, printed through the root logger
        try:
            quantize_dynamic(
                str(onnx_dir / DECODER_FILE), str(onnx_dir / QUANTIZED_DECODER_FILE), weight_type=QuantType.QInt8
            )
        finally:
            logging.disable(logging.NOTSET)
    elif (onnx_dir / QUANTIZED_DECODER_FILE).exists():
        (onnx_dir / QUANTIZED_DECODER_FILE).unlink()  # stale: from an earlier export of other weights
    report = OnnxExportReport(str(onnx_dir), {p.name: p.stat().st_size for p in sorted(onnx_dir.iterdir())})
    if verify_images:
        pixel_values = processor(images=list(verify_images))["pixel_values"]
    else:
        pixel_values = torch.randn(2, 3, height, width, generator=torch.Generator().manual_seed(0))
    try:
        report.verification = verify_onnx(model, model_dir, pixel_values, num_beams=num_beams)
    except OnnxExportError:
        for name in (ENCODER_FILE, DECODER_FILE, QUANTIZED_DECODER_FILE, RUNTIME_CONFIG_FILE):
            (onnx_dir / name).unlink(missing_ok=True)  # never leave graphs that were shown to be wrong
        raise
    if quantize:
        report.quantized_verification = verify_onnx(model, model_dir, pixel_values, num_beams=num_beams, quantized=True)
    return report


def verify_onnx(
    model: ShowAttendTellForConditionalGeneration,
    model_dir: str | os.PathLike,
    pixel_values: torch.Tensor,
    num_beams: int = 3,
    quantized: bool = False,
    check: bool = True,
) -> dict[str, Any]:
    """Compare the exported graphs with the PyTorch model on the same `pixel_values`.

    Returns the maximum absolute differences of the logits, attention weights and LSTM hidden states (the model's
    `decoder_hidden_states`) over every step of the PyTorch greedy captions (teacher-forced through the ONNX decoder),
    and how many greedy and beam captions (`num_beams`, the folder's length penalty) are token for token the same.
    With `check`, raises `OnnxExportError` when logits, attention or hidden states differ beyond the tolerances or a
    greedy caption differs (never for the quantised
    decoder, whose differences are the point of measuring it)."""
    from show_attend_tell_onnx import OnnxCaptioner

    captioner = OnnxCaptioner(model_dir, quantized=quantized)
    pixels = pixel_values.float()
    with torch.inference_mode():
        greedy = model.generate(pixels, num_beams=1, output_attentions=True, return_dict_in_generate=True)
        steps_in = greedy.sequences  # (images, 1 + steps): teacher-force every step the model took
        inputs = {"pixel_values": pixels, "decoder_input_ids": steps_in, "use_cache": True}
        torch_out = model(**inputs, output_hidden_states=True, return_dict=True)
        (torch_hidden,) = torch_out.decoder_hidden_states  # (images, steps, decoder_dim): the LSTM state of each step
    encoded = captioner.encode(pixels.numpy())
    hidden, cell = encoded["hidden"], encoded["cell"]
    logit_diff = attention_diff = hidden_diff = 0.0
    eos = model.config.eos_token_id
    alive = np.ones(steps_in.shape[0], dtype=bool)  # compare steps up to each caption's eos only
    for step in range(steps_in.shape[1]):
        out = captioner.step(steps_in[:, step].numpy(), hidden, cell, encoded["regions"], encoded["projected_regions"])
        hidden, cell = out["hidden_out"], out["cell_out"]
        if alive.any():
            logit_diff = max(logit_diff, float(np.abs(out["logits"] - torch_out.logits[:, step].numpy())[alive].max()))
            attention_diff = max(
                attention_diff, float(np.abs(out["alpha"] - torch_out.attentions[:, step].numpy())[alive].max())
            )
            hidden_diff = max(hidden_diff, float(np.abs(hidden - torch_hidden[:, step].numpy())[alive].max()))
        if step + 1 < steps_in.shape[1]:
            alive &= steps_in[:, step + 1].numpy() != eos
    ort_greedy, ort_maps, _ = captioner.generate(pixels.numpy(), num_beams=1)
    greedy_same = _same_captions(greedy.sequences.numpy(), ort_greedy, eos)
    map_diff = _map_diff(greedy.attention_maps.numpy(), ort_maps)
    with torch.inference_mode():
        beam = model.generate(pixels, num_beams=num_beams)
    ort_beam, _, _ = captioner.generate(pixels.numpy(), num_beams=num_beams)
    result = {
        "images": int(pixels.shape[0]),
        "decoder": "int8 dynamic quantisation" if quantized else "float32",
        "max_abs_diff_logits": logit_diff,
        "max_abs_diff_attention": attention_diff,
        "max_abs_diff_hidden": hidden_diff,
        "max_abs_diff_attention_maps": map_diff,
        "greedy_same": greedy_same,
        f"beam{num_beams}_same": _same_captions(beam.numpy(), ort_beam, eos),
    }
    if check and not quantized:
        # The LSTM state is bounded by 1 like the attention weights, and held to the same tolerance.
        within = logit_diff <= LOGIT_TOLERANCE and max(attention_diff, hidden_diff) <= ATTENTION_TOLERANCE
        if not within or greedy_same != pixels.shape[0]:
            raise OnnxExportError(f"{model_dir}: the exported graphs do not reproduce the PyTorch model: {result}")
    return result


def until_eos(sequence: np.ndarray | list[int], eos: int) -> list[int]:
    tokens = [int(token) for token in sequence]
    return tokens[: tokens.index(eos) + 1] if eos in tokens else tokens


def _same_captions(a: np.ndarray, b: np.ndarray, eos: int) -> int:
    return sum(until_eos(x, eos) == until_eos(y, eos) for x, y in zip(a, b, strict=True))


def _map_diff(a: np.ndarray, b: np.ndarray) -> float:
    steps = min(a.shape[1], b.shape[1])
    return float(np.abs(a[:, :steps] - b[:, :steps]).max())


__all__ = [
    "DecoderStepForOnnx",
    "EncoderForOnnx",
    "OnnxExportError",
    "OnnxExportReport",
    "export_onnx",
    "runtime_config",
    "verify_onnx",
]
