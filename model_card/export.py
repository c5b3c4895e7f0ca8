"""Make a saved model folder Hub-ready: model card, Inference Endpoints handler and its requirements, and a check that
nothing is missing and no pickle-based weight file is present."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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
STAGING_PREFIX = ".staging-"  # files written for the folder wait here until all of them are ready (`staged_files`)
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
# Secrets: key names (split into words) that hold credentials, and the shape of a Hugging Face access token. A key
# ending in "token" is a credential only after one of these words (`pad_token`, `eos_token` are vocabulary).
SECRET_WORDS = {"password", "passwd", "secret", "secrets", "apikey", "credential", "credentials"}
SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")}
CREDENTIAL_TOKEN_WORDS = {
    *("hf", "hub", "api", "access", "auth", "bearer", "oauth", "refresh", "session", "write", "read"),
    *("wandb", "github", "gh", "comet", "neptune", "mlflow"),
}
HF_TOKEN = re.compile(r"hf_[A-Za-z0-9]{30,}")
TEXT_SUFFIXES = (".json", ".md", ".txt")  # uploaded files that could carry a pasted token


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
    problems += _secret_problems(texts)
    return problems


def is_secret_key(name: str) -> bool:
    """Whether a key name says that its value is a credential: `token`, `hub_token`, `HF_TOKEN`, `wandb_api_key`,
    `password`, `client_secret`, ... but not `pad_token`, `eos_token_id` or `max_new_tokens`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().replace("-", "_").split("_")
    words = [word for word in words if word]
    if SECRET_WORDS & set(words) or SECRET_PAIRS & set(zip(words, words[1:], strict=False)):
        return True
    return bool(words) and words[-1] == "token" and (len(words) == 1 or words[-2] in CREDENTIAL_TOKEN_WORDS)


def looks_like_token(value: Any) -> bool:
    """Whether a value holds something shaped like a Hugging Face access token (`hf_` and 30+ letters or digits)."""
    return isinstance(value, str) and HF_TOKEN.search(value) is not None


def secret_paths(data: Any, path: str = "") -> list[str]:
    """Key paths (`trackers.wandb.api_key`, `callbacks[2].token`) in nested dicts and lists that hold a secret: a
    non-empty value under a secret-looking key, or a string shaped like a token under any key."""
    if isinstance(data, dict):
        found = []
        for key, value in data.items():
            inner = f"{path}.{key}" if path else str(key)
            # A flag (`use_auth_token: true`) or an empty value carries no secret.
            filled = value not in (None, "", [], {}) and not isinstance(value, bool)
            found += [inner] if is_secret_key(str(key)) and filled else secret_paths(value, inner)
        return found
    if isinstance(data, list):
        return [found for index, item in enumerate(data) for found in secret_paths(item, f"{path}[{index}]")]
    return [path or "(the whole file)"] if looks_like_token(data) else []


def _text_files(folder: Path) -> list[Path]:
    """The text files of `folder` that would be published (outside `IGNORED_PATTERNS`)."""
    paths = (path for path in folder.rglob("*") if path.suffix in TEXT_SUFFIXES and path.is_file())
    return sorted(
        path
        for path in paths
        if not any(fnmatch.fnmatch(path.relative_to(folder).as_posix(), pattern) for pattern in IGNORED_PATTERNS)
    )


def _secret_problems(files: dict[str, Path]) -> list[str]:
    """Files to be published (`{name in the folder: path}`: training_args.json, configs, cards, ...) must not carry a
    secret: in JSON, at any depth, under a secret-looking key or shaped like a token; in other text, shaped like a
    token. The messages name the file and the key path or line, never the value."""
    problems = []
    for name, path in sorted(files.items()):
        text = path.read_text(encoding="utf-8", errors="replace")
        data = _parse_json(text) if path.suffix == ".json" else None
        if data is not None:
            problems += [
                f"{name}: holds a secret in {key!r}; remove it before publishing" for key in secret_paths(data)
            ]
        else:
            lines = [number for number, line in enumerate(text.splitlines(), start=1) if looks_like_token(line)]
            problems += [f"{name}: line {number} holds what looks like a Hugging Face token" for number in lines]
    return problems


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None  # searched as plain text instead


@contextmanager
def staged_files(folder: str | os.PathLike) -> Iterator[Path]:
    """A temporary folder inside `folder` for files meant for `folder`: when the block succeeds they are moved in (same
    relative paths, by renames on one file system); when it raises, they are deleted and `folder` is left as it was."""
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=folder))
    try:
        yield staging
        for path in sorted(path for path in staging.rglob("*") if path.is_file()):
            target = Path(folder) / path.relative_to(staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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
    from .generator import HANDLER_PATH, write_model_card  # the generator imports this module's secret checks

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


__all__ = [
    "FOLDER_PACKAGES",
    "FORBIDDEN_PATTERNS",
    "IGNORED_PATTERNS",
    "check_model_folder",
    "declared_requirements",
    "export_model_folder",
    "forbidden_files",
    "is_secret_key",
    "looks_like_token",
    "secret_paths",
    "staged_files",
]
