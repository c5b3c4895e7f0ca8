"""A static Hugging Face Space that captions in the browser: `model_card/web/` plus a model folder's `onnx/` files.

    from model_card.web_space import build_web_space

    build_web_space("runs/coco-mini", "space-out", model_id="USER/sat-coco")  # a folder to upload as a static Space
    push_web_space("runs/coco-mini", "USER/sat-coco-browser", model_id="USER/sat-coco")  # build and upload

The page (`index.html`, `app.js`) loads onnxruntime-web from jsDelivr, pinned to the version in
`web/package.json`; `ort_dist=node_modules/onnxruntime-web/dist` copies the three files it needs next to the page
instead, so that the Space depends on nothing but itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

WEB_DIR = Path(__file__).resolve().parent / "web"
PAGE_FILES = ("index.html", "app.js")
ONNX_FILES = ("encoder_model.onnx", "decoder_model.onnx", "captioner.json")
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")


def ort_web_version() -> str:
    """The onnxruntime-web version the page is pinned to (web/package.json)."""
    return json.loads((WEB_DIR / "package.json").read_text())["dependencies"]["onnxruntime-web"]


def ort_cdn_base() -> str:
    return f"https://cdn.jsdelivr.net/npm/onnxruntime-web@{ort_web_version()}/dist/"


def build_web_space(
    model_dir: str | os.PathLike,
    output_dir: str | os.PathLike,
    model_id: str | None = None,
    ort_dist: str | os.PathLike | None = None,
) -> Path:
    """Write the static Space to `output_dir`: the page, `onnx/` from `model_dir` (exported with
    `show-attend-tell export-onnx`) and README.md with `sdk: static` front matter (listing `model_id` when given).
    Returns `output_dir`. Raises `ValueError` naming the folder when the ONNX files or the onnxruntime-web files are
    missing."""
    model_dir, output_dir = Path(model_dir), Path(output_dir)
    if not model_dir.is_dir():
        raise ValueError(f"{model_dir}: model folder not found")
    missing = [name for name in ONNX_FILES if not (model_dir / "onnx" / name).is_file()]
    if missing:
        raise ValueError(
            f"{model_dir}: no {', '.join('onnx/' + name for name in missing)}; run "
            f"`show-attend-tell export-onnx {model_dir}` first"
        )
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "onnx").mkdir(exist_ok=True)
    for name in ONNX_FILES:
        shutil.copy2(model_dir / "onnx" / name, output_dir / "onnx" / name)
    page = {name: (WEB_DIR / name).read_text() for name in PAGE_FILES}
    if ort_dist is not None:
        ort_dist = Path(ort_dist)
        absent = [name for name in ORT_FILES if not (ort_dist / name).is_file()]
        if absent:
            raise ValueError(f"ort_dist {ort_dist}: no {', '.join(absent)} (pass node_modules/onnxruntime-web/dist)")
        (output_dir / "ort").mkdir(exist_ok=True)
        for name in ORT_FILES:
            shutil.copy2(ort_dist / name, output_dir / "ort" / name)
        page = {name: text.replace(ort_cdn_base(), "ort/") for name, text in page.items()}
    for name, text in page.items():
        (output_dir / name).write_text(text)
    readme = (WEB_DIR / "README.md").read_text()
    if model_id is not None:
        readme = re.sub(r"\nshort_description:", f"\nmodels:\n  - {model_id}\nshort_description:", readme, count=1)
    (output_dir / "README.md").write_text(readme)
    return output_dir


def push_web_space(
    model_dir: str | os.PathLike,
    space_id: str,
    model_id: str | None = None,
    *,
    token: str | None = None,
    private: bool = False,
    ort_dist: str | os.PathLike | None = None,
) -> str:
    """Build the static Space from `model_dir` (see `build_web_space`) and upload it to the Space `space_id`
    (created with `sdk: static` when missing). Returns the commit URL."""
    import tempfile

    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="sat_web_space_") as staging:
        site = build_web_space(model_dir, Path(staging) / "space", model_id=model_id, ort_dist=ort_dist)
        api = HfApi(token=token)
        api.create_repo(space_id, repo_type="space", space_sdk="static", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=space_id, repo_type="space", folder_path=site, commit_message="Upload the browser captioner"
        )
    return info.commit_url


__all__ = ["build_web_space", "ort_cdn_base", "ort_web_version", "push_web_space"]
