"""The command as a whole: help, version, usage errors, error lines and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.cli.conftest import SRC, run_cli
from weightport import errors as wp
from weightport.cli import main
from weightport.cli.errors import describe, exit_code


def test_help_lists_every_command_and_exit_codes_without_importing_torch():
    code = (
        "import sys\nfrom weightport.cli import main\nrc = main(['--help'])\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc, file=sys.stderr)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={"PYTHONPATH": str(SRC), "PATH": ""}, timeout=60)
    assert "NO-TORCH 0" in proc.stderr
    for name in ("list", "resolve", "inspect", "plan", "convert", "cache", "lock", "bench"):
        assert f"    {name} " in proc.stdout
    assert "exit codes:" in proc.stdout and "3    check failed" in proc.stdout


def test_version_and_usage_errors(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == "weightport 0.1.0"
    assert main(["inspect"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: the following arguments are required: source")
    assert err[1].startswith("hint: see `weightport inspect --help`")
    assert main([]) == 2


def test_every_sub_command_help_shows_an_example(capsys):
    for name in ("list", "resolve", "inspect", "plan", "convert", "cache", "lock", "bench"):
        assert main([name, "--help"]) == 0
        assert "example:\n  weightport " + name in capsys.readouterr().out


def test_error_is_one_line_and_a_hint_traceback_only_when_debugging(tmp_path, capsys, monkeypatch):
    missing = str(tmp_path / "nothing.pt")
    assert main(["inspect", missing]) == 4
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: checkpoint not found: {missing}", err[1]] and err[1].startswith("hint: check the path")
    monkeypatch.setenv("WEIGHTPORT_DEBUG", "1")
    assert main(["inspect", missing]) == 4
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "SourceNotFoundError" in err
    assert err.splitlines()[-2] == f"error: checkpoint not found: {missing}"


@pytest.mark.parametrize(("exc", "code"), [
    (wp.SourceNotFoundError("x"), 4), (wp.UnknownSourceError("x"), 4), (wp.OfflineCacheMissError("x"), 4),
    (wp.PickledModelError("x"), 5), (wp.UnsafeCheckpointError("x"), 5), (wp.IntegrityError("x"), 3),
    (wp.StrictLoadError("x", missing=[], unexpected=[]), 3), (wp.UsageError("x"), 2),
    (wp.DownloadError("x"), 1), (KeyboardInterrupt(), 130), (RuntimeError("boom"), 1),
])
def test_exit_codes_follow_the_error_class(exc, code):
    assert exit_code(exc) == code


def test_a_message_that_introduces_a_list_keeps_its_first_item():
    failure = describe(wp.ShapeMismatchError([("fc.weight", "fc.weight", (10, 16), (5, 16))], hint="reinit it"))
    assert failure.message == "1 checkpoint tensor(s) do not fit the model's shape: " \
        "fc.weight <- fc.weight: checkpoint (10, 16) vs model (5, 16)"
    assert failure.hint == "reinit it"
    unexpected = describe(ValueError("bad\nsecond line"))
    assert unexpected.message == "unexpected ValueError: bad" and "WEIGHTPORT_DEBUG=1" in unexpected.hint


def test_keyboard_interrupt_is_one_line(monkeypatch, capsys):
    import importlib

    def interrupted(source):
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("weightport.registry.resolve"), "resolve", interrupted)
    assert main(["resolve", "x"]) == 130
    assert capsys.readouterr().err.strip() == "error: interrupted"


def test_unknown_source_through_the_console_entry_point():
    result = run_cli("resolve", "resnet_that_does_not_exist")
    assert result.code == 4
    assert result.error_lines[0].startswith("error: no source named 'resnet_that_does_not_exist'")
    assert result.error_lines[1].startswith("hint: ")
    assert len(result.error_lines) == 2 and "Traceback" not in result.err
