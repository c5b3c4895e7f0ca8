"""The documentation builds and its code runs: `mkdocs build --strict` (every page in the nav, every link and anchor
resolves), and every ```python block of README.md, RESULTS.md and docs/*.md runs. Python that cannot run here (it
needs the Hub or a big trained model) must not be shown as a ```python block.

The blocks of one page run in order as one script, in a folder that holds what the README's first command leaves
behind (`runs/shapes`, here a tiny model trained for a few steps by the same script) and a real photo `photo.jpg`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from show_attend_tell import ShowAttendTellForConditionalGeneration, ShowAttendTellProcessor, caption_images
from tests.conftest import REPO_ROOT
from tests.training.train_utils import TINY_ARGS, run_training

README = REPO_ROOT / "README.md"
PAGES = sorted([README, REPO_ROOT / "RESULTS.md", *(REPO_ROOT / "docs").glob("*.md")])
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.M | re.S)

# What a page's code leaves behind, beside its exit status: proof that it did what the page says.
EXPECTED_FILES = {
    "README.md": ["attention.png"],
    "docs/generation.md": ["my-captioner/model.safetensors", "attention.png", "attention.gif"],
    "docs/onnx.md": ["runs/shapes/onnx/encoder_model.onnx", "runs/shapes/onnx/decoder_model.onnx"],
}


def python_code(page: Path) -> str:
    return "\n".join(PYTHON_BLOCK.findall(page.read_text(encoding="utf-8")))


PAGES_WITH_CODE = [page.relative_to(REPO_ROOT).as_posix() for page in PAGES if python_code(page)]


def test_every_page_with_expectations_has_code():
    assert set(EXPECTED_FILES) <= set(PAGES_WITH_CODE)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, coco_mini) -> Path:
    """`runs/shapes` from `training.train` with tiny settings (a few seconds; enough steps to caption in words, as a
    trained folder does) and `photo.jpg`, a coco-mini photo."""
    folder = tmp_path_factory.mktemp("docs_workspace")
    run_training(
        *TINY_ARGS,
        "--max_train_samples", 16,
        "--no_validation",
        "--max_train_steps", 30,
        "--feature_cache", folder / "cache",
        "--output_dir", folder / "runs" / "shapes",
    )  # fmt: skip
    shutil.rmtree(folder / "cache")
    shutil.copy(sorted((coco_mini / "test").glob("*.jpg"))[0], folder / "photo.jpg")
    model = ShowAttendTellForConditionalGeneration.from_pretrained(folder / "runs" / "shapes")
    processor = ShowAttendTellProcessor.from_pretrained(folder / "runs" / "shapes")
    assert caption_images(model, processor, [folder / "photo.jpg"])[0].words, "the stand-in must caption in words"
    return folder


def run_in_copy(command: list[str], workspace: Path, tmp_path: Path) -> tuple[subprocess.CompletedProcess, Path]:
    """Run `command` in a fresh copy of the workspace, offline, with this repository's code first on the path."""
    work = tmp_path / "work"
    shutil.copytree(workspace, work)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "MPLBACKEND": "Agg",
        "OMP_NUM_THREADS": "1",
    }
    result = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=600)
    return result, work


@pytest.mark.parametrize("page", PAGES_WITH_CODE)
def test_python_blocks_run(page, workspace, tmp_path):
    result, work = run_in_copy([sys.executable, "-c", python_code(REPO_ROOT / page)], workspace, tmp_path)
    assert result.returncode == 0, f"{page}:\n{result.stderr[-3000:]}"
    missing = [name for name in EXPECTED_FILES.get(page, []) if not (work / name).is_file()]
    assert missing == [], f"{page} did not write {missing}"


def test_readme_quick_start_commands_run(workspace, tmp_path):
    """The quick start's commands after its training command (the fixture's tiny `runs/shapes` stands in for that)."""
    block = re.search(r"## Quick start.*?```bash\n(.*?)```", README.read_text(), re.S).group(1)
    train, *commands = block.strip().splitlines()
    assert train == "python -m training.train --output_dir runs/shapes" and commands
    result, work = run_in_copy(["bash", "-ec", "\n".join(commands)], workspace, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("photo.jpg\t")
    assert (work / "attention" / "photo.png").is_file() and (work / "attention" / "photo.gif").is_file()


def test_site_builds_strictly(tmp_path):
    """About 3 s. Strict mode turns mkdocs.yml's validation warnings into failures: a page missing from the nav, a
    link to a missing file (README.md and RESULTS.md included, through docs/hooks.py) or a missing anchor."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "site" / "index.html").is_file() and (tmp_path / "site" / "results" / "index.html").is_file()
