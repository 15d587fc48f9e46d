"""The README's python code blocks run, in order, in one namespace, in a temporary directory."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"(<!-- skip-test -->\s*)?```python\n(.*?)```", re.S)


def python_blocks() -> list[str]:
    return [code for skip, code in BLOCK.findall(README.read_text()) if not skip]


def test_readme_has_code_blocks():
    assert len(python_blocks()) >= 3


def test_readme_code_blocks_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for code in python_blocks():
        exec(compile(code, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    assert "weightport report" in out and "re-initialised" in out


def test_the_options_table_names_every_load_option():
    import dataclasses

    from weightport.loading.options import LoadOptions

    text = README.read_text()
    table = text[text.index("## Options"):text.index("## The report")]
    first_cells = [line.split("|")[1] for line in table.splitlines() if line.startswith("| `")]
    named = {name for cell in first_cells for name in re.findall(r"`([a-z_]+)", cell)}
    assert {f.name for f in dataclasses.fields(LoadOptions)} <= named
