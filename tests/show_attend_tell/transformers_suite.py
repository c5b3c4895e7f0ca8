"""transformers' own common model tests, taken from the source distribution of the INSTALLED release, so that every
release of CI's compatibility matrix holds the model to that release's contract.

The files come from `pip download transformers==<installed> --no-binary :all:` (PyPI), once per release: they are
extracted into `$HF_HOME/show_attend_tell/transformers-tests/<release>/` and imported from there as the package
`transformers_release_tests`. The source distributions of the supported releases ship `tests/test_modeling_common.py`
but not the modules that it imports beside it
(`tests/generation/test_utils.py`, `tests/exporters/test_export.py`); those are written as empty mixins, so the
generation and torch.export suites do not run (tests/show_attend_tell/test_transformers_common.py tests the generation
contract itself).
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType

import transformers
from huggingface_hub.constants import HF_HOME

PACKAGE = "transformers_release_tests"
TEST_FILES = ("test_modeling_common.py",)
# Imported by test_modeling_common.py but absent from the source distribution: module -> the mixin it must define.
ABSENT_MIXINS = {
    "generation/test_utils.py": "GenerationTesterMixin",
    "exporters/test_export.py": "ExportTesterMixin",
}


def tests_directory(version: str = transformers.__version__) -> Path:
    """The folder holding `PACKAGE` for transformers `version`, downloaded and extracted on first use."""
    root = Path(
        os.environ.get("SAT_TRANSFORMERS_TESTS_CACHE", Path(HF_HOME) / "show_attend_tell" / "transformers-tests")
    )
    target = root / version
    if (target / PACKAGE / "__init__.py").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as scratch:
        command = [sys.executable, "-m", "pip", "download", f"transformers=={version}", "--no-binary", ":all:"]
        command += ["--no-deps", "-q", "-d", scratch]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(
                f"pip download of the transformers {version} source distribution failed:\n{result.stderr}"
            )
        (archive,) = Path(scratch).glob("transformers-*.tar.gz")
        package = Path(scratch) / "staging" / PACKAGE
        package.mkdir(parents=True)
        with tarfile.open(archive) as sdist:
            for name in TEST_FILES:
                member = sdist.extractfile(f"transformers-{version}/tests/{name}")
                if member is None:
                    raise RuntimeError(f"transformers {version}'s source distribution has no tests/{name}")
                (package / name).write_bytes(member.read())
        (package / "__init__.py").write_text(f'"""tests/ of the transformers {version} source distribution."""\n')
        for path, mixin in ABSENT_MIXINS.items():
            module = package / path
            module.parent.mkdir(exist_ok=True)
            (module.parent / "__init__.py").touch()
            module.write_text(f'class {mixin}:\n    """Absent from the source distribution: its tests do not run."""\n')
        shutil.rmtree(target, ignore_errors=True)
        (package.parent).rename(target)
    return target


def import_release_tests(name: str) -> ModuleType:
    """`transformers_release_tests.<name>` of the installed release (e.g. `test_modeling_common`)."""
    directory = str(tests_directory())
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return importlib.import_module(f"{PACKAGE}.{name}")
