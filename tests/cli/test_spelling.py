"""Hints the command prints name its own flags, not the library's keyword arguments."""

from __future__ import annotations

import pytest

from weightport.cli.spelling import cli_hint


@pytest.mark.parametrize(("python", "cli"), [
    ("pass strict=False to keep their current values, or reinit=[...] to re-initialise them on purpose",
     "pass --no-strict to keep their current values, or --reinit KEY ... to re-initialise them on purpose"),
    ("pass verify=<a function returning the source model>, e.g. verify=lambda: MyNet()",
     "pass --verify MODULE:CALLABLE"),
    ("name the target submodule with into='...'", "name the target submodule with --into SUBMODULE"),
    ("raise timeout= (FetchOptions.timeout) or use a mirror", "raise --timeout SECONDS or use a mirror"),
    ("point WEIGHTPORT_CACHE (or cache_dir=) at a writable directory",
     "point WEIGHTPORT_CACHE (or --cache-dir) at a writable directory"),
    ('use match="structural"', "use --match structural"),
    ("exclude=[...] drops them", "--exclude PATTERN ... drops them"),
    ("name it: reinit=['fc', 'head.bias']", "name it: --reinit fc head.bias"),
])
def test_python_options_in_hints_become_flags(python: str, cli: str) -> None:
    assert cli_hint(python) == cli


def test_a_hint_without_options_is_unchanged() -> None:
    assert cli_hint("check the path") == "check the path" and cli_hint(None) is None


def test_timeout_and_retries_are_options_and_quiet_silences_the_download_bar() -> None:
    from weightport.cli.common import fetch_options
    from weightport.cli.parser import build_parser

    args = build_parser().parse_args(["-q", "inspect", "x.pth", "--timeout", "2.5", "--retries", "0"])
    options = fetch_options(args)
    assert (options.timeout, options.retries, options.progress) == (2.5, 0, False)
    default = fetch_options(build_parser().parse_args(["inspect", "x.pth"]))
    assert default.progress is None  # decided when the download starts (WEIGHTPORT_PROGRESS, a terminal)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["inspect", "x.pth", "--timeout", "0"])
