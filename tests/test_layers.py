"""Layers point one way (docs/layout.md): each folder imports exactly the folders the page's table names, the library
imports nothing above it, only the library is installed, no module imports itself back through others, and the
scripts above it run from the repository root, by path (`python training/train.py`, `accelerate launch
training/train.py`) or by module name (`python -m training.train`); one documented module,
show_attend_tell/script_path.py, is the only `sys.path` edit."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

LIBRARY = "show_attend_tell"
ABOVE_THE_LIBRARY = ("training", "model_card", "benchmarks")
SCRIPT_PATH_IMPORT = f"{LIBRARY}.script_path"
SCRIPT_PATH_MODULE = REPO_ROOT / LIBRARY / "script_path.py"
# Every script of the repository: a file above the library with a `__main__` block (not the Gradio Space's app, which
# runs on the Space from the uploaded folder alone: tests/model_card/test_space.py).
SCRIPTS = [
    str(path.relative_to(REPO_ROOT))
    for folder in ABOVE_THE_LIBRARY
    for path in sorted((REPO_ROOT / folder).rglob("*.py"))
    if 'if __name__ == "__main__":' in path.read_text(encoding="utf-8") and "space" not in path.parts
]
NOT_COPIED = (
    ".git",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "runs",
    "outputs",
    ".*_cache",
    ".hypothesis",
    ".venv",
)


def python_files(folder: str) -> list[Path]:
    return sorted((REPO_ROOT / folder).rglob("*.py"))


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """`(line, module)` of every absolute import in the file, at any depth (functions, `if TYPE_CHECKING` blocks)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
    return found


def test_the_library_imports_nothing_above_it():
    files = python_files(LIBRARY)
    assert len(files) > 10
    upward = [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {module}"
        for path in files
        for line, module in imported_modules(path)
        if module.split(".")[0] in ABOVE_THE_LIBRARY
    ]
    assert upward == []


def test_the_wheel_holds_only_the_library(tmp_path):
    """`pip wheel .` of a copy of the repository (so that no build files land in it): about 2 s."""
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT, source, ignore=shutil.ignore_patterns(*NOT_COPIED))
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, source]
    result = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert f"{LIBRARY}/metrics/coco_caption/coco_caption.py" in names  # the `evaluate` module is package data
    tops = {name.split("/")[0] for name in names}
    # the library and its torch-free ONNX Runtime half (a package of its own, since `show_attend_tell` imports torch)
    assert {top for top in tops if not top.endswith(".dist-info")} == {LIBRARY, f"{LIBRARY}_onnx"}


@pytest.mark.parametrize("folder", [LIBRARY, *ABOVE_THE_LIBRARY])
def test_no_other_sys_path_edits(folder):
    """Every folder imports by its package name from the repository root; the one module that puts the root on
    `sys.path` for a script started by path is show_attend_tell/script_path.py."""
    edits = [
        f"{path.relative_to(REPO_ROOT)}:{number}"
        for path in python_files(folder)
        if path != SCRIPT_PATH_MODULE
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "sys.path" in line
    ]
    assert edits == []


def test_every_script_imports_the_script_path_module_before_its_own_packages():
    assert len(SCRIPTS) >= 10
    for script in SCRIPTS:
        modules = [module for _, module in imported_modules(REPO_ROOT / script)]
        own = [index for index, module in enumerate(modules) if module.split(".")[0] in ABOVE_THE_LIBRARY]
        assert SCRIPT_PATH_IMPORT in modules, script
        assert not own or modules.index(SCRIPT_PATH_IMPORT) < own[0], script


@pytest.fixture(scope="module")
def help_runs(tmp_path_factory) -> dict[str, subprocess.Popen]:
    """`python SCRIPT --help` of every script, all started at once (each imports torch and transformers: seconds), from
    the repository root, in an environment where only the library is importable, as after `pip install .`."""
    installed = tmp_path_factory.mktemp("site")
    for package in (LIBRARY, f"{LIBRARY}_onnx"):
        (installed / package).symlink_to(REPO_ROOT / package, target_is_directory=True)
    env = {**os.environ, "PYTHONPATH": str(installed), "OMP_NUM_THREADS": "1"}
    runs = {
        script: subprocess.Popen(
            [sys.executable, script, "--help"], cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for script in SCRIPTS
    }
    yield runs
    for run in runs.values():
        run.kill()


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_runs_by_path_from_the_repository_root(help_runs, script):
    stdout, stderr = help_runs[script].communicate(timeout=600)
    assert help_runs[script].returncode == 0, stderr.decode()[-3000:]
    assert stdout.decode().startswith(f"usage: {Path(script).name}")


def test_no_module_shadows_a_library_it_uses():
    """No file above the library is named like a top-level module the project imports (`evaluate.py` once was)."""
    imported = {
        module.split(".")[0]
        for folder in (LIBRARY, *ABOVE_THE_LIBRARY)
        for path in python_files(folder)
        for _, module in imported_modules(path)
    }
    local = {path.stem for folder in (LIBRARY, *ABOVE_THE_LIBRARY) for path in python_files(folder)}
    own = {LIBRARY, *ABOVE_THE_LIBRARY, "__init__"}
    assert (local - own) & (imported - own) == set()


PACKAGES = (LIBRARY, f"{LIBRARY}_onnx", *ABOVE_THE_LIBRARY)


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules a file imports, at any depth, relative imports resolved (`from .x import y` and
    `from . import x` in `pkg/a.py` -> `pkg.x`); a package counts only when none of the imported names is a module."""
    package = module_name(path).split(".") if path.name == "__init__.py" else module_name(path).split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names} & modules
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            submodules = {f"{module}.{alias.name}" for alias in node.names} & modules
            found |= submodules or ({module} & modules)
    return found


def test_no_import_circle():
    """No module imports, directly or through others, a module that imports it back (at any depth: a circle hidden in
    a function-level import is still a circle, which `model_card/export.py` and `generator.py` once were)."""
    files = [path for package in PACKAGES for path in python_files(package)]
    modules = {module_name(path) for path in files}
    graph = {module_name(path): project_imports(path, modules) - {module_name(path)} for path in files}
    assert len(graph) > 40 and graph["model_card.export"] >= {"model_card.generator", "model_card.folder_rules"}

    def circle_from(start: str) -> list[str] | None:
        stack, seen = [(start, [start])], set()
        while stack:
            module, path = stack.pop()
            for imported in sorted(graph[module]):
                if imported == start:
                    return [*path, start]
                if imported not in seen:
                    seen.add(imported)
                    stack.append((imported, [*path, imported]))
        return None

    circles = {module: circle for module in sorted(graph) if (circle := circle_from(module))}
    assert circles == {}, "\n".join(" -> ".join(circle) for circle in circles.values())


LAYOUT_PAGE = REPO_ROOT / "docs" / "layout.md"
FOLDERS = (*PACKAGES, "tests")


def documented_imports() -> dict[str, set[str] | None]:
    """docs/layout.md's table `| `folder/` | what it imports from the project |` as `{folder: folders}`; `None` for
    "everything". The folders a row names are the backquoted `name/` in its second cell."""
    rows = re.findall(r"^\| `(\w+)/` \| (.+?) \|$", LAYOUT_PAGE.read_text(encoding="utf-8"), re.M)
    return {
        folder: None if cell.strip() == "everything" else set(re.findall(r"`(\w+)/`", cell)) for folder, cell in rows
    }


def test_the_layout_page_says_what_each_folder_imports():
    """Each folder imports (any depth, any import) exactly the folders its row of docs/layout.md names (a row that
    says "everything" may import any)."""
    documented = documented_imports()
    assert set(documented) == set(FOLDERS), "every folder has one row in docs/layout.md's table"
    for folder, allowed in documented.items():
        if allowed is None:
            continue
        imported = {
            module.split(".")[0]
            for path in python_files(folder)
            for _, module in imported_modules(path)
            if module.split(".")[0] in FOLDERS
        } - {folder}
        assert imported == allowed, f"{folder}/ imports {sorted(imported)}; docs/layout.md says {sorted(allowed)}"
