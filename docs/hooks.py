"""MkDocs hook (`mkdocs.yml`): the site also shows the repository's top-level pages (README.md as the home page,
RESULTS.md and the benchmark scripts' log), and every page links the way GitHub reads it, relative to the file's place
in the repository: `docs/training.md` links `../RESULTS.md`, `README.md` links `docs/training.md`. Each such link is
rewritten to the page's place on the site, where `mkdocs build --strict` checks it; a link to a file the site does
not hold stays as written and fails that check."""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

# Repository path -> path on the site, for the pages that live outside docs/.
PAGES_OUTSIDE_DOCS = {"README.md": "index.md", "RESULTS.md": "results.md", "benchmarks/RESULTS.md": "benchmark-log.md"}
INLINE_LINK = re.compile(r"(\]\()([^)\s]+)")  # the target of [text](target) and ![alt](target)


def docs_folder(config: MkDocsConfig) -> str:
    """docs_dir relative to the repository root (the folder of mkdocs.yml)."""
    return Path(config.docs_dir).relative_to(Path(config.config_file_path).parent).as_posix()


def on_files(files: Files, config: MkDocsConfig) -> Files:
    root = Path(config.config_file_path).parent
    for repository_path, site_path in PAGES_OUTSIDE_DOCS.items():
        files.append(File.generated(config, site_path, abs_src_path=str(root / repository_path)))
    return files


def site_path(repository_path: str, docs: str) -> str | None:
    """Where a repository file is on the site, or None when the site does not hold it."""
    if repository_path.startswith(f"{docs}/"):
        return repository_path[len(docs) + 1 :]
    return PAGES_OUTSIDE_DOCS.get(repository_path)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    docs = docs_folder(config)
    site_of = {site: repository for repository, site in PAGES_OUTSIDE_DOCS.items()}
    page_site_path = page.file.src_uri
    page_repository_path = site_of.get(page_site_path, f"{docs}/{page_site_path}")

    def rewrite(match: re.Match) -> str:
        target = match.group(2)
        if target.startswith(("#", "/")) or "://" in target or target.startswith("mailto:"):
            return match.group(0)
        path, hash_mark, anchor = target.partition("#")
        linked = site_path(posixpath.normpath(posixpath.join(posixpath.dirname(page_repository_path), path)), docs)
        if linked is None:
            return match.group(0)
        relative = posixpath.relpath(linked, posixpath.dirname(page_site_path) or ".")
        return f"{match.group(1)}{relative}{hash_mark}{anchor}"

    return INLINE_LINK.sub(rewrite, markdown)
