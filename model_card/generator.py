"""Write the README.md model card of a saved Show-Attend-Tell folder from its config, training arguments, metrics.json
and attention figures of real photos. Rendering and metadata validation are `huggingface_hub.ModelCard`'s."""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from model_card.folder_rules import declared_requirements, is_secret_key, looks_like_token, secret_paths, staged_files
from show_attend_tell import ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor, caption_images
from show_attend_tell.metrics import CAPTION_METRICS

logger = logging.getLogger(__name__)

TEMPLATE_PATH = Path(__file__).with_name("template.md")
HANDLER_PATH = Path(__file__).with_name("handler.py")  # copied into model folders by `export_model_folder`
FIGURES_DIR = "figures"
TRAINING_ARGS_FILE = "training_args.json"
VAL_METRICS_FILES = ("val_metrics.json", "validation_metrics.json", "eval_results.json", "all_results.json")
# metrics.json name -> (Hub metric type, https://hf.co/metrics id for the `metrics` metadata field)
METRIC_TYPES = {metric.name: metric.hub_type for metric in CAPTION_METRICS}
REQUIRED_METRICS_KEYS = ("dataset", "split", "num_images", "metrics")


@dataclass
class Photo:
    """A real photo to draw attention figures from, with its credit line (author, source, licence)."""

    path: Path
    credit: str = ""

    @classmethod
    def from_path(cls, path: str | os.PathLike) -> Photo:
        """A photo with its credit read from a `provenance.jsonl` (COCO / Flickr licence rows) next to its split
        folder, when there is one."""
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"Photo for an attention figure not found: {path}")
        for folder in list(path.resolve().parents)[:3]:
            provenance = folder / "provenance.jsonl"
            if provenance.is_file():
                for line in provenance.read_text(encoding="utf-8").splitlines():
                    row = json.loads(line) if line.strip() else {}
                    if row.get("file_name") == path.name and row.get("split", path.parent.name) == path.parent.name:
                        return cls(path, photo_credit(row))
        return cls(path)


def photo_credit(row: Mapping[str, Any]) -> str:
    """Credit line for a COCO photo from its provenance row: source, licence and the fact that the figure adapts it."""
    source = row.get("flickr_url") or row.get("coco_url") or row.get("file_name", "")
    licence = row.get("license", "unknown licence")
    link = f" ({row['license_url']})" if row.get("license_url") else ""
    coco = f", COCO image {row['coco_id']}" if row.get("coco_id") is not None else ""
    return f"{source}{coco}, {licence}{link}; attention overlay added."


# --------------------------------------------------------------------------------------------------------------------
# Reading the folder
# --------------------------------------------------------------------------------------------------------------------


def read_json(path: str | os.PathLike, required_keys: Sequence[str] = ()) -> dict:
    """Read a JSON object, raising `ValueError` naming the file for unreadable JSON or missing keys."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: file not found") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(data).__name__}")
    missing = [key for key in required_keys if key not in data]
    if missing:
        raise ValueError(f"{path}: missing keys {missing}")
    return data


def load_metrics(path: str | os.PathLike) -> dict:
    """metrics.json of `training/evaluate_captioner.py`, checked: every score must be a finite number, and the
    grounding block (when present) must have a word count and rates that are numbers or null (null: no word to
    score)."""
    metrics = read_json(path, REQUIRED_METRICS_KEYS)
    scores = metrics["metrics"]
    if not isinstance(scores, Mapping) or not scores:
        raise ValueError(f"{path}: 'metrics' must be a non-empty object of scores, got {scores!r}")
    for name, value in list(scores.items()):
        if value is None:  # not computed (e.g. SPICE offline)
            del scores[name]
            continue
        if not _finite_number(value):
            raise ValueError(f"{path}: metrics[{name!r}] must be a finite number, got {value!r}")
    if metrics.get("grounding") is not None:
        _check_grounding(path, metrics["grounding"])
    return metrics


def _check_grounding(path: str | os.PathLike, grounding: Any) -> None:
    """`grounding.overall` of metrics.json: a word count and two rates (null when there was no word to score)."""
    overall = grounding.get("overall") if isinstance(grounding, Mapping) else None
    if not isinstance(overall, Mapping):
        raise ValueError(f"{path}: 'grounding' must hold an 'overall' object, got {grounding!r}")
    words = overall.get("words")
    if isinstance(words, bool) or not isinstance(words, int) or words < 0:
        raise ValueError(f"{path}: grounding.overall.words must be a count (0 or more), got {words!r}")
    for key in ("hit_rate", "center_baseline"):
        if overall.get(key) is not None and not _finite_number(overall[key]):
            raise ValueError(f"{path}: grounding.overall.{key} must be a finite number or null, got {overall[key]!r}")


def _finite_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


def find_val_metrics(model_dir: Path) -> tuple[str, dict] | None:
    """The validation metrics training wrote into the folder, if any (the file name varies; read defensively)."""
    for name in VAL_METRICS_FILES:
        path = model_dir / name
        if path.is_file():
            try:
                data = read_json(path)
            except ValueError as error:
                logger.warning("Ignoring %s", error)
                continue
            return name, data
    return None


def _display(value: Any) -> str:
    """A training argument as shown on the card: local absolute paths reduced to their last component."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str) and os.path.isabs(value):
        return Path(value).name
    if isinstance(value, (list, tuple)):
        return ", ".join(_display(item) for item in value)
    return str(value)


def _flatten_scalars(data: Mapping, prefix: str = "") -> list[tuple[str, Any]]:
    rows = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            rows.extend(_flatten_scalars(value, f"{prefix}{key}."))
        elif isinstance(value, (int, float, str, bool)) or value is None:
            rows.append((f"{prefix}{key}", value))
    return rows


def _format_score(value: float) -> str:
    """Scores on the card are x100 with one decimal, like `training/evaluate_captioner.py`'s metrics.md."""
    return f"{100 * value:.1f}"


def _public(key: str, value: Any) -> bool:
    """Whether a (dotted) key and its value may be shown on a public card: no credential key at any level (whatever
    its value), nothing shaped like an access token."""
    return not any(is_secret_key(part) for part in key.split(".")) and not secret_paths(value)


def _grounding(metrics: dict | None) -> dict | None:
    """The overall grounding score for the card (x100), None without one, and `{"words": 0}` when no word could be
    scored: the model generated no word naming an annotated object (`training/evaluate_captioner.py` writes null
    rates)."""
    overall = ((metrics or {}).get("grounding") or {}).get("overall")
    if overall is None:
        return None
    rates = ("hit_rate", "center_baseline")
    if not overall["words"] or any(overall.get(key) is None for key in rates):
        return {"words": 0}
    return {key: _format_score(overall[key]) for key in rates} | {"words": overall["words"]}


# --------------------------------------------------------------------------------------------------------------------
# Metadata
# --------------------------------------------------------------------------------------------------------------------


def backbone_hub_id(backbone: str) -> str | None:
    """The Hub id of the timm pretrained weights for `backbone` (e.g. `timm/tf_efficientnet_lite0.in1k`)."""
    pretrained_cfg = timm.models.get_pretrained_cfg(backbone)
    return getattr(pretrained_cfg, "hf_hub_id", None) if pretrained_cfg is not None else None


def _looks_like_hub_id(name: Any) -> bool:
    return isinstance(name, str) and name.count("/") == 1 and not os.path.exists(name) and not name.startswith(".")


def _dataset_label(name: str) -> str:
    return Path(name).name if os.path.isabs(name) or os.path.exists(name) else name


def build_card_data(
    config: Any,
    model_name: str,
    metrics: dict | None,
    datasets: Sequence[str] | None,
    base_model: str | None,
    license: str,
) -> ModelCardData:
    """YAML metadata; `model-index` holds exactly the scores of `metrics` (none without metrics.json)."""
    eval_results = None
    metric_ids = None
    if metrics is not None:
        dataset = str(metrics["dataset"])
        eval_results = [
            EvalResult(
                task_type="image-to-text",
                task_name="Image Captioning",
                dataset_type=dataset if _looks_like_hub_id(dataset) else _dataset_label(dataset),
                dataset_name=_dataset_label(dataset),
                dataset_split=str(metrics["split"]),
                metric_type=METRIC_TYPES.get(name, name.lower()),
                metric_name=name,
                metric_value=float(value),
                metric_config=None,
            )
            for name, value in metrics["metrics"].items()
        ]
        metric_ids = sorted({METRIC_TYPES.get(name, name.lower()) for name in metrics["metrics"]})
    tags = ["image-captioning", "show-attend-tell", "visual-attention", "timm", config.backbone, "custom_code"]
    return ModelCardData(
        language="en",
        license=license,
        library_name="transformers",
        pipeline_tag="image-to-text",
        tags=tags,
        datasets=list(datasets) if datasets else None,
        metrics=metric_ids,
        base_model=base_model,
        model_name=model_name,
        eval_results=eval_results,
    )


# --------------------------------------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------------------------------------


def make_attention_figures(
    model: ShowAttendTellForConditionalGeneration,
    processor: ShowAttendTellProcessor,
    photos: Sequence[Photo],
    output_dir: Path,
    **generate_kwargs,
) -> list[dict[str, str]]:
    """Caption each photo, plot its per-word attention into `output_dir/figures/attention_<i>.png` and return
    `{"path", "caption", "credit"}` for the card (paths relative to `output_dir`)."""
    from show_attend_tell.visualization import plot_attention

    (output_dir / FIGURES_DIR).mkdir(parents=True, exist_ok=True)
    figures = []
    captions = caption_images(model, processor, [photo.path for photo in photos], **generate_kwargs)
    for index, (photo, result) in enumerate(zip(photos, captions, strict=True), start=1):
        relative = f"{FIGURES_DIR}/attention_{index}.png"
        plot_attention(result, path=output_dir / relative)
        figures.append({"path": relative, "caption": result.text, "credit": photo.credit})
    return figures


# --------------------------------------------------------------------------------------------------------------------
# Card
# --------------------------------------------------------------------------------------------------------------------


def write_model_card(
    model_dir: str | os.PathLike,
    metrics_path: str | os.PathLike | None = None,
    figures: Sequence[Photo | str | os.PathLike] = (),
    repo_id: str | None = None,
    revision: str = "main",
    license: str = "apache-2.0",
    datasets: Sequence[str] | None = None,
    base_model: str | None = "auto",
    model_name: str | None = None,
    num_beams: int | None = None,
    max_new_tokens: int | None = None,
    output_dir: str | os.PathLike | None = None,
) -> ModelCard:
    """Write `model_dir/README.md` and return the validated `ModelCard`. All or nothing: the card and its figures are
    written and validated in a staging folder and only then moved in, so a failure changes no file.

    Training arguments and validation metrics whose key names a credential (`hub_token`, `wandb_api_key`, ...) or
    whose value looks like an access token are left out of the card; any other token-shaped text is an error.

    Args:
        model_dir: a folder saved by `model.save_pretrained` + `processor.save_pretrained`.
        metrics_path: metrics.json of `training/evaluate_captioner.py`; defaults to `model_dir/metrics.json` if
            present. Every number in the evaluation table and `model-index` comes from it; without it the card says
            no evaluation was run.
        figures: real photos (paths or `Photo` with a credit line) to draw attention figures from; the figures are
            written to `model_dir/figures/` (the photos themselves are not copied).
        repo_id, revision: the Hub repository and revision the usage snippet loads (default: the folder path).
        datasets: Hub dataset ids for the `datasets` metadata (default: the training `dataset_name` when it is a
            Hub id).
        base_model: Hub id of the backbone weights; `"auto"` derives it from timm for pretrained backbones, `None`
            leaves it out.
        num_beams, max_new_tokens: decoding of the figures, when not the folder's `generation_config.json`.
        output_dir: where README.md and figures/ go (default `model_dir`; `export_model_folder` stages them).
    """
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise ValueError(f"{model_dir}: not a saved model folder (no config.json)")
    if metrics_path is None and (model_dir / "metrics.json").is_file():
        metrics_path = model_dir / "metrics.json"
    metrics = load_metrics(metrics_path) if metrics_path is not None else None
    training_args = read_json(model_dir / TRAINING_ARGS_FILE) if (model_dir / TRAINING_ARGS_FILE).is_file() else {}
    training_args = {key: value for key, value in training_args.items() if _public(key, value)}
    val_metrics = find_val_metrics(model_dir)

    model = ShowAttendTellForConditionalGeneration.from_pretrained(model_dir).eval()
    config = model.config

    if base_model == "auto":
        pretrained = training_args.get("pretrained_backbone", not training_args.get("no_pretrained_backbone", False))
        base_model = backbone_hub_id(config.backbone) if pretrained else None
    train_dataset = training_args.get("dataset_name") or training_args.get("train_dir") or training_args.get("dataset")
    if datasets is None:
        datasets = [train_dataset] if _looks_like_hub_id(train_dataset) else None
    model_name = model_name or (repo_id.split("/")[-1] if repo_id else model_dir.resolve().name)

    photos = [item if isinstance(item, Photo) else Photo(Path(item)) for item in figures]
    with staged_files(Path(output_dir) if output_dir is not None else model_dir) as staging:
        figure_rows = []
        if photos:
            processor = ShowAttendTellProcessor.from_pretrained(model_dir)
            figure_rows = make_attention_figures(
                model, processor, photos, staging, num_beams=num_beams, max_new_tokens=max_new_tokens
            )
        card = _render_card(
            model,
            metrics,
            training_args,
            val_metrics,
            figure_rows,
            card_data=build_card_data(config, model_name, metrics, datasets, base_model, license),
            model_name=model_name,
            repo_id=repo_id or str(model_dir),
            revision=revision,
            base_model=base_model,
            decoding_defaults=_decoding_defaults(model.generation_config),
            train_dataset=_display(train_dataset) if train_dataset else None,
        )
        card.save(staging / "README.md")
        return validate_model_card(staging / "README.md", metrics=metrics)


def _decoding_defaults(generation_config: Any) -> str:
    """The saved decoding settings in words, e.g. `num_beams=3, max_new_tokens=30`."""
    names = ("num_beams", "max_new_tokens", "length_penalty")
    return ", ".join(f"{name}={getattr(generation_config, name)}" for name in names)


def _render_card(
    model: ShowAttendTellForConditionalGeneration,
    metrics: dict | None,
    training_args: dict,
    val_metrics: tuple[str, dict] | None,
    figure_rows: list[dict[str, str]],
    card_data: ModelCardData,
    **template_values,
) -> ModelCard:
    """The card from the template; refuses one that would show anything shaped like an access token."""
    decoding = ""
    if metrics is not None:
        settings = metrics.get("decoding") or {}
        decoding = ", ".join(f"`{key}={value}`" for key, value in settings.items()) or "the default decoding"
        decoding = f"decoding {decoding}" if settings else decoding
    card = ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE_PATH),
        requirements=" ".join(shlex.quote(requirement) for requirement in declared_requirements()),
        config=model.config,
        grid=model.config.grid_size,
        num_parameters=f"{model.num_parameters():,}",
        training_args=[
            (key, _display(value)) for key, value in sorted(training_args.items()) if not isinstance(value, Mapping)
        ],
        val_metrics_file=val_metrics[0] if val_metrics else None,
        val_metrics=[
            (key, f"{value:.4g}" if isinstance(value, float) else value)
            for key, value in _flatten_scalars(val_metrics[1])
            if _public(key, value)
        ]
        if val_metrics
        else None,
        metrics=metrics,
        decoding=decoding,
        metrics_table=[
            (name, _format_score(float(value))) for name, value in (metrics or {}).get("metrics", {}).items()
        ],
        grounding=_grounding(metrics),
        figures=figure_rows,
        **template_values,
    )
    leaks = [number for number, line in enumerate(card.content.splitlines(), start=1) if looks_like_token(line)]
    if leaks:  # from metrics.json, photo credits or the arguments: never published, never printed
        raise ValueError(
            f"The model card would show what looks like a Hugging Face token on line(s) {leaks}; remove it"
        )
    return card


REQUIRED_METADATA = {"library_name": "transformers", "pipeline_tag": "image-to-text"}


def validate_model_card(path: str | os.PathLike, metrics: dict | None = None) -> ModelCard:
    """Load a README.md with `huggingface_hub.ModelCard` (YAML and `model-index` parsing) and check the metadata
    this project promises; with `metrics`, the `model-index` must hold exactly those scores. Offline; the Hub's own
    `ModelCard.validate()` (network) runs at push time."""
    card = ModelCard.load(path)
    data = card.data
    for key, expected in REQUIRED_METADATA.items():
        if getattr(data, key, None) != expected:
            raise ValueError(f"{path}: metadata {key!r} must be {expected!r}, got {getattr(data, key, None)!r}")
    if not data.license:
        raise ValueError(f"{path}: metadata 'license' is missing")
    if "custom_code" not in (data.tags or []):
        raise ValueError(f"{path}: metadata 'tags' must include 'custom_code', got {data.tags!r}")
    if metrics is None:
        if data.eval_results:
            raise ValueError(f"{path}: model-index has results but no metrics.json was given")
        return card
    found = {result.metric_name: result.metric_value for result in data.eval_results or []}
    expected = {name: float(value) for name, value in metrics["metrics"].items()}
    if found != expected:
        raise ValueError(f"{path}: model-index results {found} differ from metrics.json {expected}")
    return card
