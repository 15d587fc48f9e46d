"""``weightport bench``: benchmarks found through entry points, arguments passed through."""

from __future__ import annotations

import sys
import types
from importlib import metadata

from tests.cli.conftest import run_cli
from weightport.cli import main
from weightport.cli.commands import bench


def _entry_points(monkeypatch, **value_by_name: str) -> None:
    """Make ``metadata.entry_points`` in the bench command see only these benchmarks."""
    points = [metadata.EntryPoint(name=n, value=v, group=bench.GROUP) for n, v in value_by_name.items()]

    def entry_points(*, group: str, name: str) -> list[metadata.EntryPoint]:
        return [p for p in points if p.group == group and p.name == name]

    monkeypatch.setattr(bench.metadata, "entry_points", entry_points)


def test_arguments_after_the_benchmark_name_pass_through(monkeypatch):
    seen: list[list[str]] = []
    fake = types.ModuleType("fake_bench")
    fake.main = lambda argv: seen.append(list(argv)) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_bench", fake)
    _entry_points(monkeypatch, load="fake_bench:main")
    assert main(["bench", "load", "--repeats", "3", "resnet18", "--help"]) == 7
    assert seen == [["--repeats", "3", "resnet18", "--help"]]


def test_benchmarks_not_installed_says_so_and_how_to_install(monkeypatch, capsys):
    _entry_points(monkeypatch)
    assert main(["bench", "finetune"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: `weightport bench finetune` is not available: the benchmarks (distribution " \
        "weightport-bench) are not installed"
    assert err[1] == f"hint: {bench.INSTALL_HINT}" and "pip install -e ./benchmarks" in err[1]


def test_a_broken_installation_names_what_is_missing(monkeypatch, capsys):
    _entry_points(monkeypatch, load="weightport_bench_not_there.loading:main")
    assert main(["bench", "load"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert "cannot be imported" in err[0] and "weightport_bench_not_there" in err[0]
    assert err[1].startswith("hint: reinstall the benchmarks")


def test_the_install_hint_names_a_project_that_exists():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    assert 'name = "weightport-bench"' in (root / "benchmarks" / "pyproject.toml").read_text()


def test_bench_through_the_console_entry_point():
    result = run_cli("bench", "load", "--help")
    assert result.code == 0 and "usage: weightport bench load" in result.out
