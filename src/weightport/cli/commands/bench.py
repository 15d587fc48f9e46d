"""``weightport bench {load,finetune} [ARGS…]``: the benchmarks' own command lines, mounted here."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence

from weightport.cli.output import Output
from weightport.cli.registry import Command
from weightport.errors import MissingDependencyError

#: Benchmark name → (module exposing ``main(argv) -> int``, one-line help).
BENCHMARKS: dict[str, tuple[str, str]] = {
    "load": ("weightport.bench.loading", "loading speed and memory against the usual ways"),
    "finetune": ("weightport.bench.finetune", "fine-tune baselines: which weights to start from"),
}


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(title="benchmarks", dest="benchmark", metavar="BENCHMARK", required=True)
    for name, (module, text) in BENCHMARKS.items():
        # The benchmark parses its own arguments (including --help): what follows its name is passed on.
        sub.add_parser(name, help=text, description=f"{text} (runs {module}.main)", add_help=False)


def load_main(name: str) -> Callable[[Sequence[str]], int]:
    """The ``main`` of benchmark ``name``.

    Raises:
        MissingDependencyError: Its module is not installed in this copy of weightport.
    """
    module_name = BENCHMARKS[name][0]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and not module_name.startswith(exc.name) and not exc.name.startswith(module_name):
            raise  # the benchmark exists but something it imports is missing: say that instead
        raise MissingDependencyError(
            f"`weightport bench {name}` is not available: {module_name} is not part of this installation",
            hint="install a weightport that ships the benchmarks, or run the scripts in benchmarks/",
        ) from exc
    return module.main


def run(args: argparse.Namespace, out: Output) -> int:
    main = load_main(args.benchmark)
    return int(main(list(args.rest)) or 0)


COMMAND = Command(
    name="bench",
    help="run a benchmark: load (speed, memory) or finetune (baselines); arguments pass through",
    description="Run one of weightport's benchmarks; every argument after its name goes to the benchmark "
    "(`weightport bench load --help` shows them).",
    example="  weightport bench finetune\n  weightport bench load --help",
    configure=configure,
    run=run,
    pass_through=True,
)
