"""Load image-caption data sets into one canonical form for training and evaluation.

The canonical form is a `datasets.Dataset` (an `IterableDataset` when streaming) with the columns `image` (decoded
to PIL by the `datasets` Image feature), `captions` (list of str: all references of the image) and `image_id` (str),
plus `objects` when the source has it (the built-in shapes set and the local imagefolder sets do). Sources:

- `None`: the built-in offline set of synthetic coloured-shape scenes (`training/shapes.py`);
- a local folder (e.g. `../shared/data/coco-mini` in the `imagefolder` layout, or a folder of parquet files); the
  `metadata.jsonl` files of an imagefolder are read here line by line (`read_metadata_rows`), so that every row,
  whatever the types of its values, reaches the row checks, which name its split, row, line and file;
- a Hub data set id (parquet; `datasets` 4+ no longer runs loader scripts), optionally through a preset
  (`training/presets.py`) naming its columns.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any

import pyarrow as pa
from datasets import (
    Dataset,
    Features,
    Image,
    IterableDataset,
    List,
    Value,
    load_dataset,
    load_dataset_builder,
)

from show_attend_tell.processing_show_attend_tell import load_image, validate_captions

from .presets import CaptionPreset, get_preset
from .shapes import make_shapes_split

logger = logging.getLogger(__name__)

IMAGE_COLUMN_NAMES = ("image", "img", "jpg", "png")
CAPTION_COLUMN_NAMES = ("captions", "caption", "sentences", "text")
IMAGE_ID_COLUMN_NAMES = ("image_id", "img_id", "cocoid", "source_id")
EXTRA_COLUMNS = ("objects",)  # kept when present (attention checks use the boxes)
MAX_LISTED_PROBLEMS = 10
METADATA_JSONL = "metadata.jsonl"
SOURCE_KEY = "__source__"  # where a metadata.jsonl row came from ("file line N"), for the error messages


def load_caption_dataset(
    dataset_name: str | None,
    split: str,
    *,
    dataset_config_name: str | None = None,
    preset: str | None = None,
    image_column: str | None = None,
    caption_column: str | Sequence[str] | None = None,
    image_id_column: str | None = None,
    image_dir: str | os.PathLike | None = None,
    streaming: bool = False,
    skip_bad_examples: bool = False,
    cache_dir: str | None = None,
    num_proc: int | None = None,
    shapes_seed: int = 0,
    shapes_num_images: int | None = None,
    shapes_image_size: int = 128,
) -> Dataset | IterableDataset:
    """Load `split` of a caption data set in the canonical form (`image`, `captions`, `image_id`).

    Args:
        dataset_name: Hub data set id, local folder, or `None` for the built-in shapes set (or the preset's data set).
        split: "train", "validation" or "test" (a preset maps these to the data set's own split names).
        preset: a layout from `training.presets.PRESETS` ("coco-karpathy", "flickr8k", "flickr30k").
        image_column: column with the images (Image feature, bytes, or file paths / URLs).
        caption_column: caption column, a comma-separated string or a list of columns; each holds a string, a list
            of strings, a dict with `raw` or a list of such dicts (Karpathy JSON). Several columns are concatenated.
        image_id_column: column identifying the image. Rows sharing an id are merged into one example with all their
            captions (one caption per row layouts); without it, ids are the image file names or row numbers.
        image_dir: folder that relative image paths are resolved against (e.g. the COCO images for coco-karpathy).
        streaming: return an `IterableDataset`; rows are then checked lazily and never merged by image id.
        skip_bad_examples: drop rows with a missing or unreadable image or bad captions (and log how many) instead
            of raising a `ValueError` that names the row, image id, file and problem.
        num_proc: processes for checking the images (non-streaming).
        shapes_seed, shapes_num_images, shapes_image_size: options of the built-in shapes set.
    """
    preset_spec = get_preset(preset) if preset else None
    if dataset_name is None and preset_spec is not None:
        dataset_name = preset_spec.dataset_name
    metadata_files: list[str] = []
    if dataset_name is None:
        name = f"built-in shapes [{split}]"
        raw = make_shapes_split(split, seed=shapes_seed, num_images=shapes_num_images, image_size=shapes_image_size)
        if streaming:
            raw = raw.to_iterable_dataset()
    else:
        name = f"{dataset_name} [{split}]"
        source_split = preset_spec.split_names.get(split, split) if preset_spec else split
        metadata_files = local_metadata_files(str(dataset_name), dataset_config_name, source_split, cache_dir)
        if not metadata_files:
            raw = load_dataset(
                str(dataset_name), dataset_config_name, split=source_split, streaming=streaming, cache_dir=cache_dir
            )
    if metadata_files:  # every line is parsed (or named as broken) before any image is read
        rows = list(read_metadata_rows(metadata_files, name))
        available = [key for key in dict.fromkeys(key for row in rows for key in row) if key != SOURCE_KEY]
    else:
        available = raw.column_names if raw.column_names is not None else list(next(iter(raw)))
    columns = resolve_columns(available, preset_spec, image_column, caption_column, image_id_column, image_dir, name)
    if metadata_files and not streaming:
        return _metadata_dataset(rows, metadata_files, columns, image_dir, skip_bad_examples, num_proc, name)
    if metadata_files:  # streaming reads the files again, lazily, so that rows are checked as they stream
        raw = IterableDataset.from_generator(read_metadata_rows, gen_kwargs={"files": metadata_files, "name": name})
    if streaming:
        return _canonical_stream(raw, available, columns, image_dir, skip_bad_examples, name)
    return _canonical_dataset(raw, columns, image_dir, skip_bad_examples, num_proc, name)


def local_metadata_files(dataset_name: str, config_name: str | None, split: str, cache_dir: str | None) -> list[str]:
    """The metadata.jsonl files of `split` when `dataset_name` is a local imagefolder, else [].

    These are read here, line by line, rather than by `datasets`: pyarrow infers each column's type from the first
    rows and stops at a row of another type (a number among caption strings, a string instead of a list) with a
    traceback that names no row, file or split, before any check could report or skip that row."""
    if not os.path.isdir(dataset_name):
        return []
    data_files = load_dataset_builder(dataset_name, config_name, cache_dir=cache_dir).config.data_files or {}
    return [str(path) for path in data_files.get(split, []) if os.path.basename(str(path)) == METADATA_JSONL]


def read_metadata_rows(files: Sequence[str], name: str = "the data set") -> Iterator[dict[str, Any]]:
    """Rows of imagefolder metadata.jsonl files as Python values, untyped, with `image` = the `file_name` resolved
    against the file's folder (as `datasets` does) and `SOURCE_KEY` = "file line N".

    Raises `ValueError` naming the data set (`name`, with its split), file and line for what is not a data row at all:
    a line that is not a JSON object (or not UTF-8 text) and a `file_name` that is not a relative path inside the
    folder. Bad values of a row (missing images, captions of the wrong type) are left to the row checks, which report
    them or skip the row."""
    for file in files:
        folder = os.path.dirname(file)
        with open(file, encoding="utf-8", errors="surrogateescape") as handle:
            for line_number, line in enumerate(handle, start=1):
                if line.strip():
                    yield _metadata_row(line, folder, f"{file} line {line_number}", name)


def _metadata_row(line: str, folder: str, source: str, name: str) -> dict[str, Any]:
    expected = 'one JSON object per line, like {"file_name": "photo.jpg", "captions": ["a caption", ...]}'
    try:
        row = json.loads(line)
        json.dumps(row, ensure_ascii=False).encode("utf-8")  # bad bytes and lone "\\ud800" escapes are no text
    except json.JSONDecodeError as error:
        raise ValueError(f"{name}: {source}: not valid JSON ({error}); expected {expected}") from None
    except UnicodeEncodeError:
        raise ValueError(f"{name}: {source}: not valid UTF-8 text; expected {expected}") from None
    if not isinstance(row, dict):
        raise ValueError(f"{name}: {source}: got {type(row).__name__} {_short(row)}; expected {expected}")
    file_name = row.pop("file_name", None)
    outside = not isinstance(file_name, str) or os.path.isabs(file_name) or _climbs_out(file_name)
    if file_name is not None and outside:
        raise ValueError(
            f"{name}: {source}: file_name must be a path relative to {folder} (inside it), got {_short(file_name)}"
        )
    return row | {"image": os.path.join(folder, file_name) if file_name else None, SOURCE_KEY: source}


def _climbs_out(path: str) -> bool:
    parts = os.path.normpath(path).split(os.sep)
    return parts[0] == ".."


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def resolve_columns(
    available: Sequence[str],
    preset: CaptionPreset | None = None,
    image_column: str | None = None,
    caption_column: str | Sequence[str] | None = None,
    image_id_column: str | None = None,
    image_dir: str | os.PathLike | None = None,
    name: str = "the data set",
) -> dict[str, Any]:
    """Pick the image, caption and image id columns: explicit arguments, then the preset, then common names."""
    if isinstance(caption_column, str):
        caption_column = [column.strip() for column in caption_column.split(",") if column.strip()]
    path_columns: tuple[str, ...] = ()
    if image_column is None and preset is not None:
        image_column, path_columns = preset.image_column, preset.image_path_columns
    elif image_column is None:
        image_column = next((column for column in IMAGE_COLUMN_NAMES if column in available), None)
    captions = tuple(caption_column or (preset.caption_columns if preset else ()))
    captions = captions or tuple(column for column in CAPTION_COLUMN_NAMES if column in available)[:1]
    if image_id_column is None:
        image_id_column = preset.image_id_column if preset else None
        image_id_column = image_id_column or next((c for c in IMAGE_ID_COLUMN_NAMES if c in available), None)
    if image_column is None and not path_columns:
        raise ValueError(f"No image column found in {name} (columns: {list(available)}); pass image_column")
    if not captions:
        raise ValueError(f"No caption column found in {name} (columns: {list(available)}); pass caption_column")
    if path_columns and image_dir is None:
        raise ValueError(f"{name} has no images, only file paths (columns {list(path_columns)}). {preset.notes}")
    missing = [column for column in (image_column, *path_columns, *captions, image_id_column) if column]
    missing = [column for column in missing if column not in available]
    if missing:
        raise ValueError(f"Column(s) {missing} not found in {name}; its columns are {list(available)}")
    return {"image": image_column, "image_path": path_columns, "captions": captions, "image_id": image_id_column}


def gather_captions(values: Sequence[Any]) -> list[Any]:
    """The captions of one row from its caption column values (str, list of str, {"raw": str} or a list of those).

    Values are passed through unchecked: `validate_captions` reports anything that is not a non-empty string."""
    captions = []
    for value in values:
        for item in value if isinstance(value, list) else [value]:
            captions.append(item["raw"] if isinstance(item, dict) and "raw" in item else item)
    return captions


def _resolve_path(path: Any, image_dir: str | os.PathLike | None) -> Any:
    if not isinstance(path, str) or image_dir is None or os.path.isabs(path) or "://" in path:
        return path
    return os.path.join(image_dir, path)


def _row_image_path(row: dict, columns: dict, image_dir) -> str | None:
    """The image file path of a row whose images are given as paths (a string column or the preset's path columns)."""
    if columns["image"] is not None:
        return _resolve_path(row.get(columns["image"]), image_dir)
    parts = [row.get(column) for column in columns["image_path"]]
    return None if any(part is None for part in parts) else _resolve_path("/".join(map(str, parts)), image_dir)


def image_problem(image: Any) -> tuple[str, str | None]:
    """(problem or "", file path) for one image value of an `Image(decode=False)` column ({"bytes", "path"})."""
    path = image.get("path") if isinstance(image, dict) else None
    if image is None or (isinstance(image, dict) and image.get("bytes") is None and not path):
        return "no image", path
    source = (image.get("bytes") or path) if isinstance(image, dict) else image
    try:
        load_image(source)
    except ValueError as error:
        return str(error), path
    return "", path


def caption_problem(captions: Any) -> str:
    try:
        validate_captions(captions)
    except ValueError as error:
        return str(error)
    return ""


def _describe(name: str, index: int, image_id: str, path: str | None, problem: str, source: str | None = None) -> str:
    file = f", file {path}" if path else ""
    source = f", {source}" if source else ""
    return f"{name} row {index} (image id {image_id!r}{file}{source}): {problem}"


def _check_images(images: list) -> dict[str, list]:
    problems, paths = zip(*(image_problem(image) for image in images), strict=True) if images else ((), ())
    return {"problem": list(problems), "path": list(paths)}


def _report(problems: list[str], total: int, skip: bool, name: str) -> None:
    if not problems:
        return
    listed = "\n  ".join(problems[:MAX_LISTED_PROBLEMS])
    more = f"\n  ... and {len(problems) - MAX_LISTED_PROBLEMS} more" if len(problems) > MAX_LISTED_PROBLEMS else ""
    if len(problems) == total:  # skipping would leave an empty split, which fails later with no word about why
        raise ValueError(f"All {total} example(s) of {name} are bad, none is left to use:\n  {listed}{more}")
    if not skip:
        raise ValueError(
            f"{len(problems)} bad example(s) of {total} in {name} (pass skip_bad_examples=True / --skip_bad_examples "
            f"to drop them):\n  {listed}{more}"
        )
    logger.warning(f"Skipped {len(problems)} bad example(s) of {total} in {name}:\n  {listed}{more}")


def _canonical_dataset(raw: Dataset, columns: dict, image_dir, skip: bool, num_proc: int | None, name: str) -> Dataset:
    image_from_paths = columns["image"] is None or isinstance(raw.features[columns["image"]], Value)
    text_columns = [*columns["captions"], *([columns["image_id"]] if columns["image_id"] else [])]
    if image_from_paths:
        text_columns += [columns["image"]] if columns["image"] else list(columns["image_path"])
    text = raw.select_columns(list(dict.fromkeys(text_columns))).to_dict()
    rows = [{column: values[index] for column, values in text.items()} for index in range(len(raw))]

    extras = [column for column in EXTRA_COLUMNS if column in raw.column_names]
    if image_from_paths:
        paths = [_row_image_path(row, columns, image_dir) for row in rows]
        base = raw.select_columns(extras).add_column("image", paths) if extras else Dataset.from_dict({"image": paths})
    else:  # keep the (memory-mapped) image column as it is
        base = raw.select_columns([columns["image"], *extras]).rename_columns({columns["image"]: "image"})
    return _checked_dataset(rows, base, columns, skip, num_proc, name)


def _metadata_dataset(
    rows: list[dict], files: Sequence[str], columns: dict, image_dir, skip: bool, num_proc: int | None, name: str
) -> Dataset:
    """The canonical form of rows read by `read_metadata_rows`: only the image paths and the extra columns become
    Arrow columns before the rows are checked; captions and ids stay Python values until they have passed."""
    paths = [_row_image_path(row, columns, image_dir) for row in rows]
    extras = [column for column in EXTRA_COLUMNS if any(column in row for row in rows)]
    try:
        base = Dataset.from_dict({"image": paths} | {column: [row.get(column) for row in rows] for column in extras})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(
            f"{name}: the values of {extras} in {list(files)} must have one JSON shape in every row ({error})"
        ) from None
    # The feature cache is keyed by the fingerprint: like `datasets`' own, it must change when a file changes.
    base = Dataset(base.data, info=base.info, fingerprint=_files_fingerprint([*files, *paths]))
    return _checked_dataset(rows, base, columns, skip, num_proc, name)


def _files_fingerprint(paths: Sequence[str | None]) -> str:
    """Hash of the files' names (relative to their common folder) and contents, in order. Like `datasets`' own
    fingerprint it changes when a file changes; unlike it, it does not depend on where the folder lies or on
    modification times, so a copied or re-downloaded data set keeps its fingerprint, and so its feature cache."""
    files = {path: os.path.abspath(path) for path in paths if path and os.path.isfile(path)}
    root = os.path.commonpath(list(files.values())) if files else ""
    root = os.path.dirname(root) if os.path.isfile(root) else root
    digest = hashlib.sha256()
    for path in paths:
        if path not in files:
            digest.update(repr(("missing", path)).encode("utf-8", "surrogatepass"))
            continue
        digest.update(os.path.relpath(files[path], root).encode("utf-8", "surrogatepass"))
        content = hashlib.sha256()
        with open(path, "rb") as file:
            while chunk := file.read(1 << 20):
                content.update(chunk)
        digest.update(content.digest())
    return digest.hexdigest()[:16]


def _checked_dataset(rows: list[dict], base: Dataset, columns: dict, skip: bool, num_proc: int | None, name: str):
    """Check every row (image readable, captions well-formed), report or skip the bad ones, merge rows of the same
    image, and add `captions` and `image_id` to `base` (its `image` column and the extra columns)."""
    base = base.cast_column("image", Image(decode=False))
    checked = base.select_columns(["image"]).map(
        _check_images,
        input_columns=["image"],
        batched=True,
        batch_size=64,
        remove_columns=["image"],
        num_proc=num_proc,
        desc="Checking images",
    )
    image_problems, paths = checked["problem"], checked["path"]

    problems, captions, image_ids = [], [], []
    for index, row in enumerate(rows):
        row_captions = gather_captions([row.get(column) for column in columns["captions"]])
        image_id = row.get(columns["image_id"]) if columns["image_id"] else None
        image_id = str(image_id if image_id is not None else os.path.basename(paths[index] or "") or index)
        problem = "; ".join(p for p in (image_problems[index], caption_problem(row_captions)) if p)
        if problem:
            problems.append(_describe(name, index, image_id, paths[index], problem, row.get(SOURCE_KEY)))
        captions.append([] if problem else row_captions)
        image_ids.append(image_id)
    _report(problems, len(rows), skip, name)

    # Merge rows of the same image (one caption per row layouts), keeping the first row's image.
    merged: dict[str, int] = {}
    for index, (image_id, row_captions) in enumerate(zip(image_ids, captions, strict=True)):
        if row_captions:
            first = merged.setdefault(image_id, index)
            if first != index:
                captions[first].extend(row_captions)
    dataset = base.add_column("captions", captions).add_column("image_id", image_ids)
    dataset = dataset.select(list(merged.values())) if len(merged) < len(rows) else dataset
    dataset = dataset.cast_column("image", Image())
    extras = [column for column in base.column_names if column != "image"]
    return dataset.select_columns(["image", "captions", "image_id", *extras])


def _canonical_row(
    row: dict, index: int, *, columns: dict, extras: list[str], image_dir, skip: bool, name: str
) -> dict:
    if columns["image"] is not None and not isinstance(row.get(columns["image"]), (str, type(None))):
        image = row[columns["image"]]
    else:
        image = {"bytes": None, "path": _row_image_path(row, columns, image_dir)}
    row_captions = gather_captions([row.get(column) for column in columns["captions"]])
    problem, path = image_problem(image)
    problem = "; ".join(p for p in (problem, caption_problem(row_captions)) if p)
    image_id = row.get(columns["image_id"]) if columns["image_id"] else None
    image_id = str(image_id if image_id is not None else os.path.basename(path or "") or index)
    if problem:
        message = _describe(name, index, image_id, path, problem, row.get(SOURCE_KEY))
        if not skip:
            raise ValueError(f"Bad example (pass skip_bad_examples=True / --skip_bad_examples to drop it): {message}")
        logger.warning(f"Skipping bad example: {message}")
    canonical = {"image": image, "captions": [] if problem else row_captions, "image_id": image_id}
    return canonical | {column: row.get(column) for column in extras} | {"bad": bool(problem)}


def _canonical_stream(
    raw: IterableDataset, available: list[str], columns: dict, image_dir, skip: bool, name: str
) -> IterableDataset:
    if raw.features is not None and isinstance(raw.features.get(columns["image"]), Image):
        raw = raw.cast_column(columns["image"], Image(decode=False))
    # Extra columns need a known type; rows read from metadata.jsonl have none, so a stream of them has no extras.
    extras = {column: raw.features[column] for column in EXTRA_COLUMNS if column in (raw.features or {})}
    stream = raw.map(
        _canonical_row,
        with_indices=True,
        remove_columns=[*available, SOURCE_KEY],
        fn_kwargs={"columns": columns, "extras": list(extras), "image_dir": image_dir, "skip": skip, "name": name},
        features=Features(
            {
                "image": Image(decode=False),
                "captions": List(Value("string")),
                "image_id": Value("string"),
                **extras,
                "bad": Value("bool"),
            }
        ),
    )
    stream = stream.filter(lambda bad: not bad, input_columns=["bad"]).remove_columns("bad")
    return stream.cast_column("image", Image())
