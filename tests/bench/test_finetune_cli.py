"""The command line as another CLI mounts it: ``weightport bench finetune``."""

from __future__ import annotations

import argparse

import pytest

from weightport_bench.finetune.cli import build_parser, run_from_args


def test_mounts_as_a_sub_command_and_prints_the_recipes(capsys: pytest.CaptureFixture[str]) -> None:
    root = argparse.ArgumentParser(prog="weightport")
    bench = root.add_subparsers(dest="command").add_parser("bench").add_subparsers(dest="bench")
    build_parser(bench.add_parser("finetune")).set_defaults(func=run_from_args)
    args = root.parse_args(["bench", "finetune", "--protocols", "lp-ft", "--lr", "0.5", "--show-recipes"])
    assert args.func(args) == 0
    out = capsys.readouterr().out
    assert "lp-ft" in out and "0.5" in out and "probe_epochs" in out


def test_help_shows_readable_metavars_and_defaults():
    from weightport_bench.finetune.cli import build_parser

    text = build_parser().format_help()
    assert "RECIPE_" not in text and "%%" not in text and "['" not in text
    assert "--epochs N" in text and "--lr X" in text and "--seeds SEED [SEED ...]" in text
