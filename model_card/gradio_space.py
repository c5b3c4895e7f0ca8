"""The Gradio Space (`model_card/space/`) as a folder that builds on the Hub from PyPI packages alone.

    from model_card.gradio_space import build_gradio_space, push_gradio_space

    build_gradio_space("space-out", model_id="USER/sat-coco")  # a folder to upload as a Gradio Space
    push_gradio_space("USER/sat-coco-demo", model_id="USER/sat-coco")  # build and upload

The app loads the model with remote code (`trust_remote_code=True`); the library code it needs besides (captioning
with attention maps and the attention figure) is copied from the installed library into the Space's own
`show_attend_tell/` folder, so the copy always matches the library and the Space needs no install of this project.
README.md lists `model_id` under `models:`, which the app loads when the `MODEL_ID` variable is not set.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import show_attend_tell

SPACE_DIR = Path(__file__).resolve().parent / "space"
SPACE_FILES = ("app.py", "requirements.txt")
# The library modules the app imports and the configuration that the pipeline imports, copied unchanged (they import
# nothing of the library but each other).
LIBRARY_MODULES = ("configuration_show_attend_tell.py", "pipeline_show_attend_tell.py", "visualization.py")
PLACEHOLDER_MODEL_ID = "OWNER/show-attend-tell-coco"


def build_gradio_space(output_dir: str | os.PathLike, model_id: str) -> Path:
    """Write the Gradio Space to `output_dir`: app.py, requirements.txt, README.md naming `model_id`, and the library
    modules the app uses in `show_attend_tell/`. Returns `output_dir`."""
    if not model_id or "/" not in model_id and not Path(model_id).is_dir():
        raise ValueError(f"model_id must be a Hub id (USER/NAME) or a model folder, got {model_id!r}")
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name in SPACE_FILES:
        shutil.copy2(SPACE_DIR / name, output_dir / name)
    readme = (SPACE_DIR / "README.md").read_text()
    (output_dir / "README.md").write_text(readme.replace(PLACEHOLDER_MODEL_ID, model_id))
    package = output_dir / "show_attend_tell"
    package.mkdir(exist_ok=True)
    library = Path(show_attend_tell.__file__).resolve().parent
    for name in LIBRARY_MODULES:
        shutil.copy2(library / name, package / name)
    (package / "__init__.py").write_text(
        '"""Modules of the show-attend-tell library copied by model_card/gradio_space.py for the Space app."""\n'
    )
    return output_dir


def push_gradio_space(space_id: str, model_id: str, *, token: str | None = None, private: bool = False) -> str:
    """Build the Gradio Space for `model_id` (see `build_gradio_space`) and upload it to the Space `space_id`
    (created with `sdk: gradio` when missing). Returns the commit URL."""
    import tempfile

    from huggingface_hub import HfApi

    with tempfile.TemporaryDirectory(prefix="sat_gradio_space_") as staging:
        folder = build_gradio_space(Path(staging) / "space", model_id)
        api = HfApi(token=token)
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        info = api.upload_folder(
            repo_id=space_id, repo_type="space", folder_path=folder, commit_message="Upload the Gradio demo"
        )
    return info.commit_url


__all__ = ["build_gradio_space", "push_gradio_space"]
