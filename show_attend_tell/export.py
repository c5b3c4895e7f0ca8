"""Make a saved model folder Hub-ready: model card, Inference Endpoints handler and its requirements, and a check that
nothing is missing and no pickle-based weight file is present."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

# What the folder's remote code and handler.py import (installed next to transformers by Inference Endpoints).
FOLDER_PACKAGES = ("torch", "transformers", "tokenizers", "timm", "safetensors", "pillow", "numpy", "requests")
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
)


def declared_requirements(names: Sequence[str] = FOLDER_PACKAGES) -> list[str]:
    """`names` with the version ranges that the package declares for them in pyproject.toml (read from the installed
    package's metadata, the one source of dependency ranges); a name the package does not declare stays bare."""
    declared = {}
    for line in importlib.metadata.requires("show-attend-tell") or []:
        requirement = Requirement(line)
        if requirement.marker is None:  # extras ([dev], [demo]) carry a marker
            declared[canonicalize_name(requirement.name)] = str(requirement)
    return [declared.get(canonicalize_name(name), name) for name in names]


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


def check_model_folder(path: str | os.PathLike) -> list[str]:
    """Everything that keeps `path` from being a complete, loadable, pickle-free Hub model folder (empty if none).

    Checks the required files (config, generation config, weights in safetensors, remote code, processor and tokenizer
    files, README.md model card with YAML metadata, handler.py and its requirements.txt), that every `auto_map` entry
    of config.json and processor_config.json points at a class defined in a file of the folder, and that no
    `.bin`/`.pt`/`.pkl`-style file is present.
    """
    folder = Path(path)
    if not folder.is_dir():
        return [f"{folder} is not a directory"]
    problems = [f"{name} is missing" for name in REQUIRED_FILES if not (folder / name).is_file()]
    problems += _weights_problems(folder)
    if (folder / "config.json").is_file():
        problems += _check_auto_map(folder, "config.json", REQUIRED_AUTO_MAP)
    if (folder / "processor_config.json").is_file():
        problems += _check_auto_map(folder, "processor_config.json", ("AutoProcessor",))
    readme = folder / "README.md"
    if readme.is_file() and not readme.read_text(encoding="utf-8").startswith("---"):
        problems.append("README.md has no YAML metadata block (regenerate it with write_model_card)")
    problems += [f"{name}: pickle-based file, publish safetensors only" for name in forbidden_files(folder)]
    problems += _secret_problems(folder)
    return problems


SECRET_KEYS = ("hub_token", "token", "push_to_hub_token", "hf_token")


def _secret_problems(folder: Path) -> list[str]:
    """JSON files of the folder (training_args.json, ...) must not carry an access token."""
    problems = []
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            leaked = [key for key in SECRET_KEYS if data.get(key)]
            problems += [f"{path.name}: holds a secret in {key!r}; remove it before publishing" for key in leaked]
    return problems


def export_model_folder(
    model_dir: str | os.PathLike,
    metrics_path: str | os.PathLike | None = None,
    figures: Sequence[Any] = (),
    **card_kwargs,
) -> Path:
    """Make `model_dir` (saved by `save_pretrained`) Hub-ready in place: copy handler.py, write its requirements.txt,
    (re)write the model card, then `check_model_folder`. Raises `ValueError` listing every problem left."""
    from model_card.generator import HANDLER_PATH, write_model_card

    folder = Path(model_dir)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: not a saved model folder (no config.json)")
    pickles = forbidden_files(folder)
    if pickles:  # before the slow card generation
        raise ValueError(f"{folder} holds pickle-based files {pickles}; publish safetensors only (delete or move them)")
    shutil.copyfile(HANDLER_PATH, folder / "handler.py")
    (folder / "requirements.txt").write_text("\n".join(declared_requirements()) + "\n", encoding="utf-8")
    write_model_card(folder, metrics_path=metrics_path, figures=figures, **card_kwargs)
    problems = check_model_folder(folder)
    if problems:
        raise ValueError(f"{folder} is not ready to publish:\n- " + "\n- ".join(problems))
    return folder


__all__ = [
    "FOLDER_PACKAGES",
    "FORBIDDEN_PATTERNS",
    "IGNORED_PATTERNS",
    "check_model_folder",
    "declared_requirements",
    "export_model_folder",
    "forbidden_files",
]
