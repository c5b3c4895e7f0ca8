"""Make a saved model folder Hub-ready: model card, Inference Endpoints handler and its requirements, and a check that
nothing is missing and no pickle-based weight file is present.

```bash
python -m model_card.export runs/flickr8k --metrics runs/flickr8k/eval-test/metrics.json \
    --figure ../shared/data/coco-mini/test/000000442450.jpg --dataset flickr8k --license other
```

Nothing is uploaded (`python -m model_card.push` exports and uploads); the folder is then what a push would publish.
"""

from __future__ import annotations

import argparse
import ast
import fnmatch
import json
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from model_card.folder_rules import STAGING_PREFIX, declared_requirements, secret_problems, staged_files
from model_card.generator import HANDLER_PATH, Photo, write_model_card
from show_attend_tell import load_captioner

REQUIRED_FILES = (
    "config.json",
    "generation_config.json",
    "processor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "configuration_show_attend_tell.py",
    "modeling_show_attend_tell.py",
    "processing_show_attend_tell.py",
    "pipeline_show_attend_tell.py",
    "README.md",
    "handler.py",
    "requirements.txt",
)
REQUIRED_AUTO_MAP = ("AutoConfig", "AutoModel")
# Pickle-based or framework-specific weight formats that must never be published (safetensors only).
FORBIDDEN_PATTERNS = ("*.bin", "*.pt", "*.pth", "*.pkl", "*.pickle", "*.ckpt", "*.joblib", "*.msgpack", "*.h5")
TEXT_SUFFIXES = (".json", ".md", ".txt")  # uploaded files that could carry a pasted token
# Training leftovers that are not part of the model.
IGNORED_PATTERNS = (
    "checkpoint-*/*",
    "checkpoints/*",
    "runs/*",
    "*.log",
    ".git/*",
    "__pycache__/*",
    "*.pyc",
    ".cache/*",
    f"{STAGING_PREFIX}*/*",
)


def _class_defined(module_file: Path, class_name: str) -> bool:
    tree = ast.parse(module_file.read_text(encoding="utf-8"), filename=str(module_file))
    return any(isinstance(node, ast.ClassDef) and node.name == class_name for node in tree.body)


def _check_auto_map(folder: Path, file_name: str, required: Sequence[str]) -> list[str]:
    try:
        data = json.loads((folder / file_name).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        return [f"{file_name}: unreadable ({error})"]
    auto_map = data.get("auto_map")
    if not isinstance(auto_map, dict) or not auto_map:
        return [f"{file_name}: no 'auto_map' (the folder would not load with trust_remote_code=True)"]
    problems = [f"{file_name}: auto_map lacks {key!r}" for key in required if key not in auto_map]
    for key, reference in auto_map.items():
        references = reference if isinstance(reference, list) else [reference]
        for ref in filter(None, references):
            module_name, _, class_name = str(ref).rpartition(".")
            module_file = folder / f"{module_name.split('--')[-1]}.py"
            if not module_file.is_file():
                problems.append(f"{file_name}: auto_map[{key!r}] = {ref!r} but {module_file.name} is missing")
            elif not _class_defined(module_file, class_name):
                problems.append(f"{file_name}: auto_map[{key!r}] = {ref!r} but {module_file.name} has no {class_name}")
    return problems


def _weights_problems(folder: Path) -> list[str]:
    if (folder / "model.safetensors").is_file():
        return []
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        return ["model.safetensors is missing (nor a model.safetensors.index.json with shards)"]
    shards = set(json.loads(index.read_text(encoding="utf-8")).get("weight_map", {}).values())
    return [
        f"weight shard {shard} listed in {index.name} is missing"
        for shard in sorted(shards)
        if not (folder / shard).is_file()
    ]


def forbidden_files(folder: str | os.PathLike) -> list[str]:
    """Paths (relative, sorted) of pickle-based files under `folder`, outside the folders that are never uploaded
    (`IGNORED_PATTERNS`: training checkpoints with their optimizer states, logs)."""
    folder = Path(folder)
    found = {path for pattern in FORBIDDEN_PATTERNS for path in folder.rglob(pattern) if path.is_file()}
    relative = (path.relative_to(folder).as_posix() for path in found)
    return sorted(path for path in relative if not any(fnmatch.fnmatch(path, ignored) for ignored in IGNORED_PATTERNS))


def check_model_folder(path: str | os.PathLike, staged: str | os.PathLike | None = None) -> list[str]:
    """Everything that keeps `path` from being a complete, loadable, pickle-free Hub model folder (empty if none).

    Checks the required files (config, generation config, weights in safetensors, remote code, processor and tokenizer
    files, README.md model card with YAML metadata, handler.py and its requirements.txt), that every `auto_map` entry
    of config.json and processor_config.json points at a class defined in a file of the folder, that no
    `.bin`/`.pt`/`.pkl`-style file is present and that no file to be published holds a secret (`secret_paths`).
    With `staged`, a folder of files about to be moved into `path` (see `staged_files`), the check sees `path` as it
    will be after the move, so that nothing has to be written into it before the check passes.
    """
    folder = Path(path)
    if not folder.is_dir():
        return [f"{folder} is not a directory"]
    layers = [Path(staged), folder] if staged is not None else [folder]  # a staged file replaces the folder's

    def find(name: str) -> Path | None:
        return next((layer / name for layer in layers if (layer / name).is_file()), None)

    problems = [f"{name} is missing" for name in REQUIRED_FILES if find(name) is None]
    problems += _weights_problems(folder)
    if (folder / "config.json").is_file():
        problems += _check_auto_map(folder, "config.json", REQUIRED_AUTO_MAP)
    if (folder / "processor_config.json").is_file():
        problems += _check_auto_map(folder, "processor_config.json", ("AutoProcessor",))
    readme = find("README.md")
    if readme is not None and not readme.read_text(encoding="utf-8").startswith("---"):
        problems.append("README.md has no YAML metadata block (regenerate it with write_model_card)")
    problems += [f"{name}: pickle-based file, publish safetensors only" for name in forbidden_files(folder)]
    texts = {path.relative_to(layer).as_posix(): path for layer in reversed(layers) for path in _text_files(layer)}
    problems += secret_problems(texts)
    return problems


def _text_files(folder: Path) -> list[Path]:
    """The text files of `folder` that would be published (outside `IGNORED_PATTERNS`)."""
    paths = (path for path in folder.rglob("*") if path.suffix in TEXT_SUFFIXES and path.is_file())
    return sorted(
        path
        for path in paths
        if not any(fnmatch.fnmatch(path.relative_to(folder).as_posix(), pattern) for pattern in IGNORED_PATTERNS)
    )


def export_model_folder(
    model_dir: str | os.PathLike,
    metrics_path: str | os.PathLike | None = None,
    figures: Sequence[Any] = (),
    **card_kwargs,
) -> Path:
    """Make `model_dir` (saved by `save_pretrained`) Hub-ready in place: copy handler.py, write its requirements.txt,
    (re)write the model card, then `check_model_folder`. Raises `ValueError` listing every problem left.

    All or nothing: the new files are prepared in a staging folder and checked together with the folder; only when
    every step has passed are they moved in, so a failure leaves `model_dir` as it was."""
    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a saved model folder (no config.json)")
    pickles = forbidden_files(folder)
    if pickles:  # before the slow card generation
        raise ValueError(f"{folder} holds pickle-based files {pickles}; publish safetensors only (delete or move them)")
    with staged_files(folder) as staging:
        shutil.copyfile(HANDLER_PATH, staging / "handler.py")
        (staging / "requirements.txt").write_text("\n".join(declared_requirements()) + "\n", encoding="utf-8")
        write_model_card(folder, metrics_path=metrics_path, figures=figures, output_dir=staging, **card_kwargs)
        problems = check_model_folder(folder, staged=staging)
        if problems:
            raise ValueError(f"{folder} is not ready to publish:\n- " + "\n- ".join(problems))
    return folder


def add_card_arguments(parser: argparse.ArgumentParser) -> None:
    """The model card's options, shared by `python -m model_card.export` and `python -m model_card.push`."""
    parser.add_argument(
        "--metrics", default=None, help="metrics.json of training.evaluate_captioner (default: in the folder)."
    )
    parser.add_argument(
        "--figure", action="append", default=[], help="A photo for an attention figure on the card (repeatable)."
    )
    parser.add_argument("--license", default="apache-2.0")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="Folder saved by save_pretrained (model + processor).")
    add_card_arguments(parser)
    parser.add_argument("--dataset", action="append", default=None, help="Training data set id for the card.")
    args = parser.parse_args(argv)
    try:
        load_captioner(args.model_dir)  # a damaged folder gets the one-line message of `show-attend-tell caption`
        export_model_folder(
            args.model_dir,
            metrics_path=args.metrics,
            figures=[Photo.from_path(path) for path in args.figure],
            license=args.license,
            datasets=args.dataset,
        )
    except ValueError as error:  # ModelFolderError too
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.model_dir} is ready to publish")
    return 0


__all__ = [
    "add_card_arguments",
    "FORBIDDEN_PATTERNS",
    "IGNORED_PATTERNS",
    "check_model_folder",
    "export_model_folder",
    "forbidden_files",
]


if __name__ == "__main__":
    sys.exit(main())
