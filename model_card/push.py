"""Publish a saved Show-Attend-Tell model folder to the Hugging Face Hub.

```bash
python -m model_card.push outputs/sat-coco --repo-id USER/show-attend-tell-coco \
    --metrics eval/coco-test/metrics.json --figure ../shared/data/coco-mini/test/000000058636.jpg
```

Checks that the folder loads (a damaged one gets the one-line message of `show-attend-tell caption`) and Hub access
(fails fast offline, without a token, or with a read-only token) first, then regenerates the model card, copies the
Inference Endpoints handler, checks the folder (`check_model_folder`) and uploads it with
`huggingface_hub.upload_folder` (safetensors, code, JSON, card and figures only; never pickles). Large weight files go
through the Hub's large-file storage automatically.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi, ModelCard, get_token
from huggingface_hub.errors import HfHubHTTPError, HFValidationError
from huggingface_hub.utils import validate_repo_id

import show_attend_tell.script_path  # noqa: F401  (runs by path too: see its docstring)
from model_card.export import (
    FORBIDDEN_PATTERNS,
    IGNORED_PATTERNS,
    add_card_arguments,
    check_model_folder,
    export_model_folder,
)
from model_card.generator import Photo
from show_attend_tell import ModelFolderError, load_captioner

logger = logging.getLogger(__name__)

UPLOAD_PATTERNS = [
    "*.safetensors",
    "*.safetensors.index.json",
    "*.json",
    "*.py",
    "*.md",
    "*.txt",
    "figures/*.png",
    "onnx/*.onnx",
]


class HubAccessError(RuntimeError):
    """The Hub cannot be written to from here (offline, no token, read-only token, unreachable endpoint)."""


def _offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.upper() in {"1", "ON", "YES", "TRUE"}


def check_hub_access(repo_id: str, token: str | None = None) -> str:
    """Fast pre-flight for pushing to `repo_id`: returns the user name of the token, or raises `HubAccessError`
    with a clear message (offline mode, malformed repo id, no token, unreachable Hub, invalid or read-only token).
    Run it before training with `--push_to_hub` so a long run does not end in a failed upload."""
    if _offline():
        raise HubAccessError(
            f"Cannot push to {repo_id!r}: HF_HUB_OFFLINE is set, so the Hub is not contacted. Unset it (and make sure "
            "the Hub is reachable) to publish, or keep the model folder and push it later."
        )
    if not isinstance(repo_id, str) or repo_id.count("/") != 1:
        raise HubAccessError(f"--repo-id must look like 'USER/NAME' or 'ORG/NAME', got {repo_id!r}")
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise HubAccessError(f"Invalid --repo-id {repo_id!r}: {error}") from None
    token = token or get_token()
    if not token:
        raise HubAccessError(
            f"Cannot push to {repo_id!r}: no Hugging Face token. Run `hf auth login` or set HF_TOKEN to a token with "
            "write access."
        )
    api = HfApi(token=token)
    try:
        info = api.whoami()
    except HfHubHTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status == 401:
            raise HubAccessError(f"The Hugging Face token is invalid or expired (401 from {api.endpoint})") from None
        raise HubAccessError(f"The Hub at {api.endpoint} answered with an error: {error}") from None
    except Exception as error:  # network errors of the HTTP client (DNS, refused connection, timeout)
        raise HubAccessError(
            f"Cannot reach the Hub at {api.endpoint} ({type(error).__name__}: {error}). Check the network or set "
            "HF_ENDPOINT; offline, keep the model folder and push it later."
        ) from None
    role = ((info.get("auth") or {}).get("accessToken") or {}).get("role")
    if role == "read":
        raise HubAccessError(
            f"The token of {info.get('name')!r} is read-only: pushing to {repo_id!r} needs write access"
        )
    return str(info.get("name"))


def push_folder(
    model_dir: str | os.PathLike,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    metrics_path: str | os.PathLike | None = None,
    figures: Sequence[Any] = (),
    token: str | None = None,
    onnx: bool = False,
    web_space: str | None = None,
    space: str | None = None,
    **card_kwargs,
) -> str:
    """Check access, regenerate the card and handler files, check the folder, then create the repo (and branch) and
    upload. Returns the commit URL. Used by `python -m model_card.push` and the training script's
    `--push_to_hub`; `figures` are photos (paths or `model_card.generator.Photo`) for the card's attention figures.

    `onnx`: also export and verify `onnx/` (on the figure photos) and upload it. `web_space`: a Space id; the static
    browser captioner is built from `onnx/` (exported when missing) and uploaded there after the model. `space`: a
    Space id; the Gradio demo (model_card/gradio_space.py) is uploaded there after the model."""
    check_hub_access(repo_id, token=token)
    folder = Path(model_dir)
    if onnx or web_space:
        from show_attend_tell.onnx_export import export_onnx

        export_onnx(folder, verify_images=[getattr(photo, "path", photo) for photo in figures] or None)
    export_model_folder(
        folder, metrics_path=metrics_path, figures=figures, repo_id=repo_id, revision=revision or "main", **card_kwargs
    )
    api = HfApi(token=token)
    try:
        ModelCard.load(folder / "README.md").validate(repo_type="model")  # the Hub's own metadata check
    except ValueError as error:
        raise ValueError(f"The Hub rejected the metadata of {folder / 'README.md'}: {error}") from None
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    if revision and revision != "main":
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    problems = check_model_folder(folder)  # nothing changed since the export; cheap and keeps the promise explicit
    if problems:
        raise ValueError(f"{folder} is not ready to publish:\n- " + "\n- ".join(problems))
    info = api.upload_folder(
        repo_id=repo_id,
        folder_path=folder,
        revision=revision,
        commit_message=commit_message or "Upload Show-Attend-Tell model",
        allow_patterns=UPLOAD_PATTERNS,
        ignore_patterns=[*FORBIDDEN_PATTERNS, *IGNORED_PATTERNS],
    )
    logger.info("Pushed %s to %s", folder, info.commit_url)
    if web_space:
        from model_card.web_space import push_web_space

        space_url = push_web_space(folder, web_space, model_id=repo_id, token=token, private=private)
        logger.info("Pushed the browser captioner to %s", space_url)
    if space:
        from model_card.gradio_space import push_gradio_space

        space_url = push_gradio_space(space, repo_id, token=token, private=private)
        logger.info("Pushed the Gradio demo to %s", space_url)
    return info.commit_url


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="Folder saved by save_pretrained (model + processor).")
    parser.add_argument("--repo-id", required=True, help="USER/NAME or ORG/NAME on the Hub.")
    parser.add_argument("--private", action="store_true", help="Create the repository as private.")
    parser.add_argument("--revision", default=None, help="Branch to push to (created if missing; default main).")
    parser.add_argument("--commit-message", default=None)
    add_card_arguments(parser)
    parser.add_argument("--onnx", action="store_true", help="Also export, verify and upload onnx/ (ONNX Runtime).")
    parser.add_argument(
        "--web-space", default=None, metavar="SPACE_ID", help="Also publish the static browser captioner to this Space."
    )
    parser.add_argument(
        "--space", default=None, metavar="SPACE_ID", help="Also publish the Gradio demo (model_card/space/) there"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    try:
        load_captioner(args.model_dir)  # a damaged folder gets the one-line message of `show-attend-tell caption`
    except ModelFolderError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        url = push_folder(
            args.model_dir,
            args.repo_id,
            private=args.private,
            revision=args.revision,
            commit_message=args.commit_message,
            metrics_path=args.metrics,
            figures=[Photo.from_path(path) for path in args.figure],
            license=args.license,
            onnx=args.onnx,
            web_space=args.web_space,
            space=args.space,
        )
    except (HubAccessError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(url)
    return 0


if __name__ == "__main__":
    sys.exit(main())
