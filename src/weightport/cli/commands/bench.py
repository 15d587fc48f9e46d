"""``weightport bench {load,finetune} [ARGS…]``: the benchmarks' own command lines, mounted here.

The benchmarks are a distribution of their own (``weightport-bench``, in ``benchmarks/`` of a
checkout) that registers each benchmark's ``main(argv) -> int`` under the entry point group
:data:`GROUP`; the library names no module of it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from importlib import metadata

from weightport.cli.output import Output
from weightport.cli.registry import Command
from weightport.errors import MissingDependencyError

#: The entry point group a benchmark registers its ``main`` under.
GROUP = "weightport.benchmarks"

#: Benchmark name → one-line help; each is found through :data:`GROUP` when it runs.
BENCHMARKS: dict[str, str] = {
    "load": "loading speed and memory against the usual ways",
    "finetune": "fine-tune baselines: which weights to start from",
}

#: What to do when the benchmarks are not installed; works from the root of a weightport checkout.
INSTALL_HINT = "from a weightport checkout: pip install -e ./benchmarks  (make setup does it)"


def configure(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(title="benchmarks", dest="benchmark", metavar="BENCHMARK", required=True)
    for name, text in BENCHMARKS.items():
        # The benchmark parses its own arguments (including --help): what follows its name is passed on.
        sub.add_parser(name, help=text, description=text, add_help=False)


def load_main(name: str) -> Callable[[Sequence[str]], int]:
    """The ``main`` of benchmark ``name``, from its entry point.

    Raises:
        MissingDependencyError: The benchmarks are not installed, or their installation is broken.
    """
    found = metadata.entry_points(group=GROUP, name=name)
    if not found:
        raise MissingDependencyError(
            f"`weightport bench {name}` is not available: the benchmarks (distribution weightport-bench) "
            "are not installed",
            hint=INSTALL_HINT,
        )
    entry = next(iter(found))
    try:
        main: Callable[[Sequence[str]], int] = entry.load()
    except ImportError as exc:
        missing = getattr(exc, "name", None) or str(exc)
        raise MissingDependencyError(
            f"`weightport bench {name}` is installed but cannot be imported ({entry.value}): {missing} is missing",
            hint=f"reinstall the benchmarks with their dependencies, {INSTALL_HINT}",
        ) from exc
    return main


def run(args: argparse.Namespace, out: Output) -> int:
    main = load_main(args.benchmark)
    return int(main(list(args.rest)) or 0)


COMMAND = Command(
    name="bench",
    help="run a benchmark: load (speed, memory) or finetune (baselines); arguments pass through",
    description="Run one of weightport's benchmarks (installed from benchmarks/ of a checkout); every argument "
    "after its name goes to the benchmark (`weightport bench load --help` shows them).",
    example="  weightport bench finetune\n  weightport bench load --help",
    configure=configure,
    run=run,
    pass_through=True,
)
