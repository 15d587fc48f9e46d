"""The argument parser: global options, then one sub-parser per registered command."""

from __future__ import annotations

import argparse
from typing import NoReturn

from weightport import __version__
from weightport.cli.common import add_global_options
from weightport.cli.errors import DEBUG_ENV, EXIT_CODE_HELP, USAGE
from weightport.cli.registry import Command, commands

DESCRIPTION = """\
Get pretrained weights from anywhere into any PyTorch model, and see what is in them first.

Sources: a path (file or directory), file:PATH, torchvision:NAME[.TAG], timm:NAME[.TAG],
hf:ORG/REPO[@REVISION][/FILE], https://URL[#sha256=HEX], pkg:PACKAGE/PATH, or a bare name
(an alias, then torchvision, then timm)."""

EXAMPLE = """\
examples:
  weightport list 'resnet*'
  weightport inspect model.safetensors
  weightport plan resnet18 --model torchvision:resnet18 --num-classes 10
  weightport convert checkpoint.ckpt model.safetensors
  weightport --json cache ls"""


class Parser(argparse.ArgumentParser):
    """argparse, with usage errors written like every other error: ``error:`` then ``hint:``."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"error: {message}\nhint: see `{self.prog} --help`\n")


def _epilog() -> str:
    codes = "\n".join(f"  {code:<4} {text}" for code, text in EXIT_CODE_HELP)
    return f"{EXAMPLE}\n\nexit codes:\n{codes}\n\nerrors are one line and a hint; {DEBUG_ENV}=1 shows the traceback."


def build_parser() -> argparse.ArgumentParser:
    """The ``weightport`` parser with every registered sub-command."""
    parser = Parser(
        prog="weightport", description=DESCRIPTION, epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"weightport {__version__}")
    add_global_options(parser, top=True)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in commands():
        _add_command(sub, command)
    return parser


def _add_command(sub: argparse._SubParsersAction, command: Command) -> None:
    p = sub.add_parser(
        command.name, help=command.help, description=command.description,
        epilog="example:\n" + command.example, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_global_options(p, top=False)
    command.configure(p)
    p.set_defaults(command=command)
