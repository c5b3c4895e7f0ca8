"""What a model folder may hold and how its files are written: the package versions its code needs, the secret
checks every published file passes, and the staging folder that makes writing a set of files all or nothing. Used by
the card generator and by the export, which build on it."""

from __future__ import annotations

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
STAGING_PREFIX = ".staging-"  # files written for the folder wait here until all of them are ready (`staged_files`)
# Secrets: key names (split into words) that hold credentials, and the shape of a Hugging Face access token. A key
# ending in "token" is a credential only after one of these words (`pad_token`, `eos_token` are vocabulary).
SECRET_WORDS = {"password", "passwd", "secret", "secrets", "apikey", "credential", "credentials"}
SECRET_PAIRS = {("api", "key"), ("access", "key"), ("private", "key"), ("secret", "key")}
CREDENTIAL_TOKEN_WORDS = {
    *("hf", "hub", "api", "access", "auth", "bearer", "oauth", "refresh", "session", "write", "read"),
    *("wandb", "github", "gh", "comet", "neptune", "mlflow"),
}
HF_TOKEN = re.compile(r"hf_[A-Za-z0-9]{30,}")


def declared_requirements(names: Sequence[str] = FOLDER_PACKAGES) -> list[str]:
    """`names` with the version ranges that the package declares for them in pyproject.toml (read from the installed
    package's metadata, the one source of dependency ranges); a name the package does not declare stays bare."""
    declared = {}
    for line in importlib.metadata.requires("show-attend-tell") or []:
        requirement = Requirement(line)
        if requirement.marker is None:  # extras ([dev], [demo]) carry a marker
            declared[canonicalize_name(requirement.name)] = str(requirement)
    return [declared.get(canonicalize_name(name), name) for name in names]


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


def secret_problems(files: dict[str, Path]) -> list[str]:
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


__all__ = [
    "FOLDER_PACKAGES",
    "STAGING_PREFIX",
    "declared_requirements",
    "is_secret_key",
    "looks_like_token",
    "secret_paths",
    "secret_problems",
    "staged_files",
]
