"""Compatibility is designed, not luck: one declared transformers range (pyproject.toml), the same range checked
where saved folders are loaded, everything a folder or the Space asks for derived from it, and a clear stop for
releases outside it. CI proves the range with a version matrix (.ci/run)."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from model_card.folder_rules import declared_requirements
from show_attend_tell.configuration_show_attend_tell import TRANSFORMERS_REQUIREMENT
from tests.conftest import REMOTE_CODE_PYTHON, REPO_ROOT


def package_requirements() -> dict[str, SpecifierSet]:
    """pyproject.toml's dependencies (as installed) by name, without the extras."""
    requirements = map(Requirement, importlib.metadata.requires("show-attend-tell"))
    return {requirement.name.lower(): requirement.specifier for requirement in requirements if not requirement.marker}


def test_remote_code_checks_the_range_that_pyproject_declares():
    assert package_requirements()["transformers"] == SpecifierSet(TRANSFORMERS_REQUIREMENT)


def test_folder_and_space_requirements_come_from_pyproject():
    declared = package_requirements()
    folder = {Requirement(line).name.lower(): Requirement(line).specifier for line in declared_requirements()}
    assert folder["transformers"] == declared["transformers"] and folder["torch"] == declared["torch"]
    assert all(folder[name] == declared.get(name, SpecifierSet()) for name in folder)

    space_file = REPO_ROOT / "model_card" / "space" / "requirements.txt"
    lines = [line for line in space_file.read_text().splitlines() if line and not line.startswith("#")]
    space = {Requirement(line).name.lower(): Requirement(line).specifier for line in lines}
    assert "transformers" in space
    mismatched = {name: str(spec) for name, spec in space.items() if name in declared and spec != declared[name]}
    assert not mismatched, f"model_card/space/requirements.txt differs from pyproject.toml: {mismatched}"


UNSUPPORTED_RELEASE = textwrap.dedent(
    """
    import json, sys
    sys.modules["show_attend_tell"] = None
    import transformers
    from packaging.specifiers import SpecifierSet
    from transformers import AutoModel

    folder, supported = sys.argv[1], sys.argv[2]
    if SpecifierSet(supported).contains(transformers.__version__, prereleases=True):
        transformers.__version__ = "4.57.6"  # what the folder's code sees under a pinned 4.x environment
    try:
        AutoModel.from_pretrained(folder, trust_remote_code=True)
        print(json.dumps({"error": None}))
    except Exception as error:
        print(json.dumps({"type": type(error).__name__, "error": str(error), "version": transformers.__version__}))
    """
)


@pytest.mark.remote_code
def test_unsupported_transformers_stops_at_from_pretrained_with_one_clear_message(tiny_model_dir, tmp_path):
    # Under a supported release the fresh process pretends to be 4.57.6; CI also runs it under a real 4.57.6.
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf_home"), "PYTHONPATH": ""}
    result = subprocess.run(
        [REMOTE_CODE_PYTHON, "-c", UNSUPPORTED_RELEASE, str(tiny_model_dir), TRANSFORMERS_REQUIREMENT],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["type"] == "ImportError", report
    assert report["error"] == (
        f"Show-Attend-Tell models need transformers{TRANSFORMERS_REQUIREMENT}, but transformers {report['version']} "
        f"is installed. Install a supported release: pip install 'transformers{TRANSFORMERS_REQUIREMENT}'"
    )


def test_remote_code_files_import_at_most_one_level_deep():
    # transformers 5.0 copies only a file's direct relative imports out of a local folder: a chain of two relative
    # imports loads under later releases and breaks under 5.0 (FileNotFoundError in the modules cache).
    package = REPO_ROOT / "show_attend_tell"
    remote_code = [path.stem for path in package.glob("*_show_attend_tell.py")]
    assert len(remote_code) == 4

    def relative_imports(module: str) -> set[str]:
        tree = ast.parse((package / f"{module}.py").read_text())
        return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}

    for module in remote_code:
        for imported in relative_imports(module):
            assert imported in remote_code, (module, imported)
            deeper = relative_imports(imported) - relative_imports(module)
            assert not deeper, f"{module} -> {imported} -> {deeper}, which {module} does not import itself"
    # The model and the pipeline need only the configuration (no PIL or tokenizers in the model); the processor carries
    # the pipeline, so that `processor.save_pretrained` copies it into the folder, and the configuration it imports.
    assert relative_imports("configuration_show_attend_tell") == set()
    assert relative_imports("modeling_show_attend_tell") == {"configuration_show_attend_tell"}
    assert relative_imports("pipeline_show_attend_tell") == {"configuration_show_attend_tell"}
    assert relative_imports("processing_show_attend_tell") == {
        "pipeline_show_attend_tell",
        "configuration_show_attend_tell",
    }


def test_package_import_names_the_supported_range_under_an_unsupported_release():
    # (importing transformers' first classes swaps its lazy module in sys.modules: patch the one that stays)
    script = (
        "import sys; from transformers import AutoConfig, AutoModel, AutoModelForImageTextToText, AutoProcessor; "
        "sys.modules['transformers'].__version__ = '4.57.6'; import show_attend_tell"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"ImportError: Show-Attend-Tell models need transformers{TRANSFORMERS_REQUIREMENT}, but transformers 4.57.6 "
        f"is installed. Install a supported release: pip install 'transformers{TRANSFORMERS_REQUIREMENT}'"
    )
