"""``weightport bench``: benchmarks mounted as sub-commands, arguments passed through."""

from __future__ import annotations

import sys
import types

from tests.cli.conftest import run_cli
from weightport.cli import main
from weightport.cli.commands import bench


def test_arguments_after_the_benchmark_name_pass_through(monkeypatch):
    seen: list[list[str]] = []
    fake = types.ModuleType("fake_bench")
    fake.main = lambda argv: seen.append(list(argv)) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_bench", fake)
    monkeypatch.setitem(bench.BENCHMARKS, "load", ("fake_bench", "fake"))
    assert main(["bench", "load", "--repeats", "3", "resnet18", "--help"]) == 7
    assert seen == [["--repeats", "3", "resnet18", "--help"]]


def test_a_missing_benchmark_module_says_so(monkeypatch, capsys):
    monkeypatch.setitem(bench.BENCHMARKS, "load", ("weightport.bench.not_there", "gone"))
    assert main(["bench", "load"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "error: `weightport bench load` is not available: weightport.bench.not_there is not part " \
        "of this installation"
    assert err[1].startswith("hint: ")


def test_bench_through_the_console_entry_point():
    import importlib

    result = run_cli("bench", "load", "--help")
    try:
        importlib.import_module("weightport.bench.loading")
    except ModuleNotFoundError:  # this branch of the project does not ship the benchmark yet
        assert result.code == 1 and "is not available" in result.error_lines[0]
    else:
        assert result.code == 0 and "usage:" in result.out
