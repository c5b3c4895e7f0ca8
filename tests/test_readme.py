"""The README's commands and Python snippet are the real ones."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def test_python_snippet_runs(tmp_path):
    snippet = re.search(r"## Python API.*?```python\n(.*?)```", README, re.S).group(1)
    result = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generated_text" in result.stdout
    assert (tmp_path / "my-captioner" / "model.safetensors").exists()


def test_ci_runs_the_readme_commands():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    commands = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    install_and_test = next(line for line in commands.splitlines() if "pytest" in line)
    install, test = (part.strip() for part in install_and_test.split("&&"))
    assert f"python -m {install}" in ci or install in ci
    assert test in ci
