"""The table of sub-commands: each module in :mod:`weightport.cli.commands` declares one ``COMMAND``.

Command modules import only the standard library and weightport's light modules at import time, so
that building the parser (and ``weightport --help``) never imports torch; heavy imports happen in
``run``.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from weightport.cli.output import Output

#: The sub-command modules, in the order ``weightport --help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "weightport.cli.commands.list",
    "weightport.cli.commands.resolve",
    "weightport.cli.commands.inspect",
    "weightport.cli.commands.plan",
    "weightport.cli.commands.convert",
    "weightport.cli.commands.cache",
    "weightport.cli.commands.lock",
    "weightport.cli.commands.bench",
)


@dataclass(frozen=True)
class Command:
    """One sub-command.

    Attributes:
        name: What the user types (``inspect``).
        help: One line for the list of commands.
        description: What it does, shown by ``weightport NAME --help``.
        example: Example invocations, shown at the end of its help.
        configure: Adds the command's arguments to its parser.
        run: Does the work; returns the exit code.
        pass_through: Arguments it does not know are left in ``args.rest`` for another parser.
    """

    name: str
    help: str
    description: str
    example: str
    configure: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Output], int]
    pass_through: bool = False


def commands() -> list[Command]:
    """Every sub-command, in help order."""
    return [importlib.import_module(name).COMMAND for name in COMMAND_MODULES]
