"""The README is the front door: its commands are the ones CI runs, it stays short, and its links lead somewhere.
Its Python code runs in tests/test_docs.py with that of the documentation pages."""

from __future__ import annotations

import re

from tests.conftest import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
RELATIVE_LINK = re.compile(r"\]\((?![a-z]+://|#|mailto:)([^)\s#]+)")  # [text](path) and ![alt](path), not URLs


def test_ci_runs_the_readme_commands():
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    commands = re.search(r"```bash\n(.*?)```", README, re.S).group(1)
    install_and_test = next(line for line in commands.splitlines() if "pytest" in line)
    install, test = (part.strip() for part in install_and_test.split("&&"))
    assert f"python -m {install}" in ci or install in ci
    assert test in ci


def test_readme_is_a_five_minute_read():
    assert len(README.splitlines()) <= 220


def test_readme_links_point_at_files():
    targets = RELATIVE_LINK.findall(README)
    assert {"docs/training.md", "RESULTS.md", "docs/figures/flickr8k/000000442450.png"} <= set(targets)
    assert [target for target in targets if not (REPO_ROOT / target).is_file()] == []


def test_readme_links_every_documentation_page():
    pages = {f"docs/{page.name}" for page in (REPO_ROOT / "docs").glob("*.md")}
    assert pages - set(RELATIVE_LINK.findall(README)) == set()
