"""Every python code block of docs/*.md runs: in order, one namespace per page, in a temporary directory.

Like tests/test_readme.py for the README. A block that needs what a test cannot have (the network,
a GPU) is marked ``<!-- skip-test -->`` just above it; every other block must run as written.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
BLOCK = re.compile(r"(<!-- skip-test -->\s*)?```python\n(.*?)```", re.S)
PAGES = sorted(DOCS.glob("*.md"))


def python_blocks(page: Path) -> list[str]:
    return [code for skip, code in BLOCK.findall(page.read_text()) if not skip]


def test_the_docs_have_pages() -> None:
    assert {p.name for p in PAGES} >= {"cli.md", "layouts.md", "sources.md"}


@pytest.mark.parametrize("page", [p for p in PAGES if python_blocks(p)], ids=lambda p: p.name)
def test_every_python_block_of_a_page_runs(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for code in python_blocks(page):
        exec(compile(code, str(page), "exec"), namespace)
