"""Show-Attend-Tell captioning with ONNX Runtime: numpy, Pillow, `tokenizers` and `onnxruntime` only, no torch.

    from show_attend_tell_onnx import OnnxCaptioner

    captioner = OnnxCaptioner.from_pretrained("runs/coco-mini")  # a folder with onnx/ (show-attend-tell export-onnx)
    result = captioner.caption(["photo.jpg"], num_beams=5)[0]
    result.text, result.words, result.attention  # attention: (words, grid_height, grid_width)

This is a separate top-level package because `show_attend_tell` imports torch when it is imported.

Preprocessing reads the folder's saved processor settings (`processor_config.json`). The saved processor
(transformers' `ViTImageProcessor`) resizes with torchvision, so this module carries the same computation in numpy
(`resize_bicubic_antialias`: torch's antialiased bicubic resampling of uint8 images, a = -0.5, in fixed point) and
the web page carries it in JavaScript; tests/show_attend_tell/test_onnx.py and tests/model_card/test_web_browser.py
check both against the processor on real photos (equal to 1e-6, i.e. the same 8-bit pixels).

Decoding follows transformers' `generate()` step for step (greedy: argmax; beam search: transformers' vectorised
beam search with its length penalty and early-stopping rules), so captions equal the PyTorch model's up to float
rounding.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps

ENCODER_FILE = "encoder_model.onnx"
DECODER_FILE = "decoder_model.onnx"
QUANTIZED_DECODER_FILE = "decoder_model_quantized.onnx"
RUNTIME_CONFIG_FILE = "captioner.json"
NEG_INF = -1.0e9  # transformers' beam search marks impossible beams with this score


# --------------------------------------------------------------------------------------------------------------------
# Preprocessing
# --------------------------------------------------------------------------------------------------------------------


def _cubic_aa(x: np.ndarray) -> np.ndarray:
    """torch's antialiased bicubic kernel (a = -0.5, as Pillow)."""
    a = -0.5
    x = np.abs(x)
    return np.where(
        x < 1.0,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0),
    )


def resize_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, int]:
    """torch's antialiased bicubic resampling of 8-bit images along one axis, as integers: `(index, weight,
    precision)` with `index`, `weight` of shape `(out_size, taps)`; output `o` is
    `clip((sum(weight[o] * x[index[o]]) + 2**(precision - 1)) >> precision, 0, 255)`.

    As torch's `_compute_index_ranges_int16_weights`: float64 weights (support widened by the scale when shrinking,
    normalised to sum 1), then int16 fixed point with the most precision bits that keep the largest weight in range.
    """
    scale = in_size / out_size
    support = 2.0 * max(scale, 1.0)
    inverse = 1.0 / max(scale, 1.0)
    taps = int(np.ceil(support)) * 2 + 1
    index = np.zeros((out_size, taps), dtype=np.int64)
    weight = np.zeros((out_size, taps), dtype=np.float64)
    for o in range(out_size):
        center = scale * (o + 0.5)
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), in_size)
        values = _cubic_aa((np.arange(low, high) - center + 0.5) * inverse)
        total = values.sum()
        index[o, : high - low] = np.arange(low, high)
        weight[o, : high - low] = values / total if total != 0 else 0.0
    precision = 0
    while precision < 22 and int(0.5 + weight.max() * (1 << (precision + 1))) < (1 << 15):
        precision += 1
    scaled = weight * (1 << precision)
    fixed = np.where(scaled < 0, np.trunc(scaled - 0.5), np.trunc(scaled + 0.5)).astype(np.int64)
    return index, fixed, precision


def _resample_axis0(values: np.ndarray, out_size: int) -> np.ndarray:
    index, weight, precision = resize_taps(values.shape[0], out_size)
    total = np.einsum("ot,ot...->o...", weight, values.astype(np.int64)[index]) + (1 << (precision - 1))
    return np.clip(total >> precision, 0, 255).astype(np.uint8)


def resize_bicubic_antialias(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """An `(H, W, 3)` uint8 image resized to `(height, width, 3)` uint8 exactly as the processor does it
    (torchvision resizes uint8 images natively: torch's antialiased bicubic in fixed point, the width first, each
    pass rounded to 8 bits)."""
    if image.shape[1] != width:
        image = _resample_axis0(image.transpose(1, 0, 2), width).transpose(1, 0, 2)
    if image.shape[0] != height:
        image = _resample_axis0(image, height)
    return np.ascontiguousarray(image)


def to_rgb(source: Any) -> Image.Image:
    """A path, bytes, PIL image or uint8 array as an RGB PIL image: EXIF orientation applied, transparency composited
    on white (as `show_attend_tell.load_image` does for these inputs). Raises `ValueError` naming the input."""
    name = str(source) if isinstance(source, (str, os.PathLike)) else f"<{type(source).__name__}>"
    try:
        if isinstance(source, Image.Image):
            image = source
        elif isinstance(source, np.ndarray):
            if source.dtype != np.uint8 or source.ndim not in (2, 3):
                raise ValueError(f"image array: expected uint8 HxW or HxWxC, got {source.dtype} {source.shape}")
            image = Image.fromarray(source)
        elif isinstance(source, (bytes, bytearray)):
            import io

            image = Image.open(io.BytesIO(source))
        elif isinstance(source, (str, os.PathLike)):
            if not Path(source).is_file():
                raise ValueError(f"Image file not found: {name}")
            image = Image.open(source)
        else:
            raise ValueError(f"Cannot read an image from an object of type {type(source).__name__}")
        image.load()
    except OSError as error:
        raise ValueError(f"{name} is not a readable image ({type(error).__name__}: {error})") from None
    image = ImageOps.exif_transpose(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        background = Image.new("RGBA", image.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, image.convert("RGBA"))
    return image.convert("RGB")


@dataclass(frozen=True)
class Preprocessing:
    """The saved image processor's settings as the runtime uses them."""

    height: int
    width: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Preprocessing:
        """From `processor_config.json` (its `image_processor` entry) or a `preprocessor_config.json`."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"{path}: missing (the model folder's saved processor)")
        config = json.loads(path.read_text())
        config = config.get("image_processor", config)
        kind = config.get("image_processor_type", "")
        problems = [key for key in ("do_resize", "do_rescale", "do_normalize") if config.get(key) is False]
        problems += [key for key in ("do_center_crop", "do_pad") if config.get(key)]
        if config.get("resample", 3) != 3:  # PIL's BICUBIC, the package's choice (build_image_processor)
            problems.append("resample")
        if abs(config.get("rescale_factor", 1 / 255) - 1 / 255) > 1e-12:
            problems.append("rescale_factor")
        if not kind.startswith("ViTImageProcessor") or problems:
            raise ValueError(
                f"{path}: a {kind or 'unknown'} image processor with {problems or 'these settings'} "
                "is not supported by the ONNX runtime"
            )
        size = config["size"]
        return cls(size["height"], size["width"], tuple(config["image_mean"]), tuple(config["image_std"]))

    def __call__(self, images: list[Any]) -> np.ndarray:
        """Images -> `pixel_values` `(batch, 3, height, width)` float32, as the processor's."""
        if not images:
            raise ValueError("images: empty list; pass at least one image")
        # The processor's fused rescale + normalise: (x - 255 mean) / (255 std) in float32.
        mean = np.asarray(self.mean, dtype=np.float32) * np.float32(255.0)
        std = np.asarray(self.std, dtype=np.float32) * np.float32(255.0)
        batch = []
        for image in images:
            pixels = resize_bicubic_antialias(np.asarray(to_rgb(image)), self.height, self.width)
            batch.append(((pixels.astype(np.float32) - mean) / std).transpose(2, 0, 1))
        return np.ascontiguousarray(np.stack(batch))


# --------------------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------------------


@dataclass
class OnnxCaption:
    """One caption, with the fields of `show_attend_tell.Caption`: `text`, `words` (one per word token) and `attention`
    `(len(words), grid_height, grid_width)` (each map sums to 1); plus `token_ids` (without the start token, up to and
    including `eos` when it ended) and the beam `score`."""

    text: str
    token_ids: list[int]
    words: list[str]
    attention: np.ndarray
    score: float | None = None


def caption_lengths(generated: np.ndarray, eos_token_id: int) -> np.ndarray:
    """How many tokens of each generated sequence `(rows, tokens)` (without the start token) are its caption: the
    index of its first `eos_token_id`, or `tokens` when it did not end. `show_attend_tell`'s `caption_lengths` in
    numpy (tests/show_attend_tell/test_onnx.py holds them equal)."""
    return np.cumprod(generated != eos_token_id, axis=1).sum(axis=1).astype(np.int64)


def repeated_ngram_ends(sequences: np.ndarray, ngram_size: int) -> list[list[int]]:
    """For each row of `sequences` `(rows, length)`, the tokens that would end an n-gram of `ngram_size` tokens the row
    already holds: every token that followed an earlier occurrence of the row's last `ngram_size - 1` tokens
    (transformers' `no_repeat_ngram_size`; 0 turns it off)."""
    length = sequences.shape[1]
    if ngram_size < 1 or length + 1 < ngram_size:
        return [[] for _ in range(len(sequences))]
    context = ngram_size - 1
    ends = []
    for row in sequences.tolist():
        last = row[length - context :] if context else []
        ends.append([row[start + context] for start in range(length - context) if row[start : start + context] == last])
    return ends


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _top_k(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest values of each row, largest first (ties: lower index first)."""
    part = np.argpartition(-values, k - 1, axis=-1)[:, :k]
    order = np.argsort(-np.take_along_axis(values, part, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(part, order, axis=-1)


# --------------------------------------------------------------------------------------------------------------------
# Captioner
# --------------------------------------------------------------------------------------------------------------------


class OnnxCaptioner:
    """Encoder and decoder-step ONNX models of a saved Show-Attend-Tell folder, run with ONNX Runtime."""

    def __init__(self, folder: str | os.PathLike, quantized: bool = False, threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(folder)
        if not folder.is_dir():
            raise ValueError(f"{folder}: model folder not found")
        onnx_dir = folder / "onnx"
        decoder_file = QUANTIZED_DECODER_FILE if quantized else DECODER_FILE
        missing = [
            name for name in (ENCODER_FILE, decoder_file, RUNTIME_CONFIG_FILE) if not (onnx_dir / name).is_file()
        ]
        if missing:
            raise ValueError(
                f"{folder}: no {', '.join('onnx/' + name for name in missing)}; export the folder first with "
                f"`show-attend-tell export-onnx {folder}`" + (" --quantize" if quantized else "")
            )
        self.folder = folder
        self.config = json.loads((onnx_dir / RUNTIME_CONFIG_FILE).read_text())
        processor_file = folder / "processor_config.json"
        if not processor_file.is_file() and (folder / "preprocessor_config.json").is_file():
            processor_file = folder / "preprocessor_config.json"
        self.preprocess = Preprocessing.from_file(processor_file)
        if not (folder / "tokenizer.json").is_file():
            raise ValueError(f"{folder}: no tokenizer.json (the saved processor's tokenizer)")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(onnx_dir / ENCODER_FILE), options, providers=providers)
        self.decoder = ort.InferenceSession(str(onnx_dir / decoder_file), options, providers=providers)
        self.grid = tuple(self.config["grid"])
        self.special_ids = set(self.config["special_token_ids"])

    @classmethod
    def from_pretrained(cls, folder: str | os.PathLike, **kwargs) -> OnnxCaptioner:
        return cls(folder, **kwargs)

    # Model pieces -----------------------------------------------------------------------------------------------

    def encode(self, pixel_values: np.ndarray) -> dict[str, np.ndarray]:
        """`pixel_values` -> regions, projected_regions, hidden, cell (the initial LSTM state)."""
        names = [output.name for output in self.encoder.get_outputs()]
        return dict(zip(names, self.encoder.run(None, {"pixel_values": pixel_values.astype(np.float32)}), strict=True))

    def step(
        self, input_ids: np.ndarray, hidden: np.ndarray, cell: np.ndarray, regions: np.ndarray, projected: np.ndarray
    ) -> dict[str, np.ndarray]:
        """One decoder step for `rows` sequences (regions repeated per row) -> logits, hidden, cell, alpha, gate."""
        names = [output.name for output in self.decoder.get_outputs()]
        feeds = {
            "input_ids": input_ids.astype(np.int64),
            "hidden": hidden,
            "cell": cell,
            "regions": regions,
            "projected_regions": projected,
        }
        return dict(zip(names, self.decoder.run(None, feeds), strict=True))

    # Decoding ---------------------------------------------------------------------------------------------------

    def generate(
        self,
        pixel_values: np.ndarray,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
        length_penalty: float | None = None,
        early_stopping: bool | str | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """`(sequences, attention_maps, scores)` like `model.generate(..., output_attentions=True,
        return_dict_in_generate=True)`: sequences `(images, 1 + steps)` starting with the start token, maps
        `(images, steps, num_regions)` zero after a sequence's end; scores are beam scores (None for greedy)."""
        generation = self.config["generation"]
        num_beams = num_beams or generation.get("num_beams") or 1
        max_new_tokens = max_new_tokens or generation["max_new_tokens"]
        if num_beams < 1 or max_new_tokens < 1:
            raise ValueError(f"num_beams and max_new_tokens must be >= 1, got {num_beams} and {max_new_tokens}")
        encoded = self.encode(pixel_values)
        if num_beams == 1:
            return (*self._greedy(encoded, max_new_tokens), None)
        if length_penalty is None:
            length_penalty = generation.get("length_penalty", 1.0)
        if early_stopping is None:
            early_stopping = generation.get("early_stopping", False)
        return self._beam_search(encoded, num_beams, max_new_tokens, length_penalty, early_stopping)

    def _greedy(self, encoded: dict[str, np.ndarray], max_new_tokens: int) -> tuple[np.ndarray, np.ndarray]:
        eos, pad = self.config["eos_token_id"], self.config["pad_token_id"]
        images = encoded["regions"].shape[0]
        hidden, cell = encoded["hidden"], encoded["cell"]
        tokens = np.full(images, self.config["decoder_start_token_id"], dtype=np.int64)
        sequences, maps = [tokens], []
        finished = np.zeros(images, dtype=bool)
        for _ in range(max_new_tokens):
            out = self.step(tokens, hidden, cell, encoded["regions"], encoded["projected_regions"])
            hidden, cell = out["hidden_out"], out["cell_out"]
            scores = self._processed(out["logits"], np.stack(sequences, axis=1))
            tokens = np.where(finished, pad, scores.argmax(axis=-1))
            maps.append(out["alpha"])
            sequences.append(tokens)
            finished |= tokens == eos
            if finished.all():
                break
        sequences = np.stack(sequences, axis=1)
        return sequences, self._zero_after_eos(sequences, np.stack(maps, axis=1))

    def _beam_search(
        self,
        encoded: dict[str, np.ndarray],
        num_beams: int,
        max_new_tokens: int,
        length_penalty: float,
        early_stopping: bool | str,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """transformers' vectorised beam search (`GenerationMixin._beam_search`, one `eos`), in numpy."""
        eos = self.config["eos_token_id"]
        batch, k = encoded["regions"].shape[0], num_beams
        keep = 2 * k  # beams_to_keep with one eos token
        max_length = 1 + max_new_tokens  # the start token is the decoder prompt
        regions = np.repeat(encoded["regions"], k, axis=0)  # one copy per row: rows of image i are i*k ... i*k+k-1
        projected = np.repeat(encoded["projected_regions"], k, axis=0)
        hidden, cell = np.repeat(encoded["hidden"], k, axis=0), np.repeat(encoded["cell"], k, axis=0)
        running = np.full((batch, k, max_length), eos, dtype=np.int64)
        running[:, :, 0] = self.config["decoder_start_token_id"]
        sequences = running.copy()
        running_scores = np.zeros((batch, k), dtype=np.float32)
        running_scores[:, 1:] = NEG_INF
        scores = np.full((batch, k), NEG_INF, dtype=np.float32)
        finished = np.zeros((batch, k), dtype=bool)
        improvable = np.ones((batch, 1), dtype=bool)
        running_indices = np.full((batch, k, max_length - 1), -1, dtype=np.int64)
        indices = running_indices.copy()
        top_mask = np.arange(keep) < k
        step_maps = []
        rows_b = np.arange(batch)[:, None]
        cur_len = 1
        while True:
            out = self.step(running[:, :, cur_len - 1].reshape(-1), hidden, cell, regions, projected)
            step_maps.append(out["alpha"])
            log_probs = _log_softmax(out["logits"].astype(np.float32))
            log_probs = self._processed(log_probs, running[:, :, :cur_len].reshape(batch * k, cur_len))
            log_probs = log_probs.reshape(batch, k, -1)
            vocab = log_probs.shape[-1]
            log_probs = (log_probs + running_scores[:, :, None]).reshape(batch, -1)
            top = _top_k(log_probs, keep)  # (batch, keep)
            top_log_probs = np.take_along_axis(log_probs, top, axis=-1)
            top_beams, top_ids = top // vocab, top % vocab
            top_sequences = running[rows_b, top_beams].copy()
            top_sequences[:, :, cur_len] = top_ids
            top_indices = running_indices[rows_b, top_beams].copy()
            top_indices[:, :, cur_len - 1] = top_beams + np.arange(batch)[:, None] * k
            hits = (top_ids == eos) | (cur_len + 1 >= max_length)
            # Beams that continue: the best k that did not just end.
            running_log_probs = (top_log_probs + hits.astype(np.float32) * NEG_INF).astype(np.float32)
            nxt = _top_k(running_log_probs, k)
            running = np.take_along_axis(top_sequences, nxt[:, :, None], axis=1)
            running_scores = np.take_along_axis(running_log_probs, nxt, axis=1)
            running_indices = np.take_along_axis(top_indices, nxt[:, :, None], axis=1)
            # Finished hypotheses: merge the ones that just ended (among the top k) with the kept ones.
            just_finished = hits & top_mask[None, :]
            candidate = (top_log_probs / np.float32((cur_len + 1 - 1) ** length_penalty)).astype(np.float32)
            full = finished.all(axis=-1, keepdims=True) & (early_stopping is True)
            candidate = candidate + full.astype(np.float32) * NEG_INF
            candidate = candidate + (~improvable).astype(np.float32) * NEG_INF
            candidate = candidate + (~just_finished).astype(np.float32) * NEG_INF
            merged_scores = np.concatenate([scores, candidate], axis=1)
            best = _top_k(merged_scores, k)
            sequences = np.take_along_axis(np.concatenate([sequences, top_sequences], 1), best[:, :, None], axis=1)
            indices = np.take_along_axis(np.concatenate([indices, top_indices], 1), best[:, :, None], axis=1)
            finished = np.take_along_axis(np.concatenate([finished, just_finished], 1), best, axis=1)
            scores = np.take_along_axis(merged_scores, best, axis=1)
            beam_rows = running_indices[:, :, cur_len - 1].reshape(-1)
            hidden, cell = out["hidden_out"][beam_rows], out["cell_out"][beam_rows]
            cur_len += 1
            if early_stopping == "never" and length_penalty > 0.0:
                best_length = max_length - 1
            else:
                best_length = cur_len - 1
            best_running = running_scores[:, :1] / np.float32(best_length**length_penalty)
            worst_finished = np.where(finished, scores.min(axis=1, keepdims=True), NEG_INF)
            improvable = improvable & (best_running > worst_finished).any(axis=-1, keepdims=True)
            open_beam = not (finished.all() and early_stopping is True)
            if not (improvable.any() and open_beam and not hits.all()):
                break
        sequences, indices, scores = sequences[:, 0], indices[:, 0], scores[:, 0]
        generated = int((indices >= 0).sum(axis=1).max())
        sequences, indices = sequences[:, : 1 + generated], indices[:, :generated]
        stacked = np.stack(step_maps, axis=1)  # (batch * k, steps, num_regions)
        maps = stacked[indices.clip(min=0), np.arange(generated)[None, :]] * (indices >= 0)[:, :, None]
        return sequences, self._zero_after_eos(sequences, maps), scores

    def _processed(self, scores: np.ndarray, sequences: np.ndarray) -> np.ndarray:
        """The next-token `scores` `(rows, vocab)` of `sequences` `(rows, length)` (start token first) with the tokens
        the generation config rules out set to -inf, as transformers' logits processors do (on the logits for greedy,
        on the log-probabilities for beam search): `suppress_tokens` (`SuppressTokensLogitsProcessor`) and the ends
        of repeated n-grams (`no_repeat_ngram_size`, `NoRepeatNGramLogitsProcessor`). Both are absent from folders
        exported before the runtime knew them."""
        generation = self.config["generation"]
        suppress = generation.get("suppress_tokens") or []
        repeats = repeated_ngram_ends(sequences, generation.get("no_repeat_ngram_size") or 0)
        if not suppress and not any(repeats):
            return scores
        scores = scores.copy()
        scores[:, suppress] = -np.inf
        for row, tokens in enumerate(repeats):
            scores[row, tokens] = -np.inf
        return scores

    def _zero_after_eos(self, sequences: np.ndarray, maps: np.ndarray) -> np.ndarray:
        """The maps of the steps after each caption's end token set to zero (the end token's own map stays)."""
        lengths = caption_lengths(sequences[:, 1:], self.config["eos_token_id"])
        return (maps * (np.arange(maps.shape[1]) <= lengths[:, None])[:, :, None]).astype(np.float32)

    # Text -------------------------------------------------------------------------------------------------------

    def decode(self, token_ids: list[int], attention: np.ndarray, score: float | None = None) -> OnnxCaption:
        """Ids after the start token and their attention maps -> an `OnnxCaption` (stops at `eos`)."""
        token_ids = [int(token_id) for token_id in token_ids]
        length = int(caption_lengths(np.array([token_ids], dtype=np.int64), self.config["eos_token_id"])[0])
        ids = token_ids[: length + 1]  # with the end token, when there is one
        kept = [step for step in range(length) if ids[step] not in self.special_ids]
        words = [self.tokenizer.decode([ids[step]]).strip() for step in kept]
        text = " ".join(self.tokenizer.decode(ids, skip_special_tokens=True).split())
        return OnnxCaption(text, ids, words, attention[kept].reshape(len(kept), *self.grid), score)

    def caption(self, images: list[Any], **generate_kwargs) -> list[OnnxCaption]:
        """Caption images (paths, bytes, PIL images or uint8 arrays); `num_beams`, `max_new_tokens`,
        `length_penalty`, `early_stopping` as in `generate()` (defaults: the folder's generation_config.json)."""
        images = images if isinstance(images, (list, tuple)) else [images]
        sequences, maps, scores = self.generate(self.preprocess(list(images)), **generate_kwargs)
        return [
            self.decode(sequence[1:].tolist(), row_maps, None if scores is None else float(scores[i]))
            for i, (sequence, row_maps) in enumerate(zip(sequences, maps, strict=True))
        ]


__all__ = [
    "OnnxCaption",
    "OnnxCaptioner",
    "Preprocessing",
    "caption_lengths",
    "repeated_ngram_ends",
    "resize_bicubic_antialias",
    "resize_taps",
    "to_rgb",
]
