"""``weightport bench finetune`` and ``benchmarks/finetune.py``: the command line of the benchmark."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from weightport.errors import UsageError, WeightportError

#: Recipe fields the command line can override for every protocol: flag → (field, type).
RECIPE_FLAGS: dict[str, tuple[str, type]] = {
    "--epochs": ("epochs", int),
    "--probe-epochs": ("probe_epochs", int),
    "--lr": ("lr", float),
    "--head-lr": ("head_lr", float),
    "--weight-decay": ("weight_decay", float),
    "--optimizer": ("optimizer", str),
    "--schedule": ("schedule", str),
    "--image-size": ("image_size", int),
    "--batch-size": ("batch_size", int),
    "--augmentation": ("augmentation", str),
    "--label-smoothing": ("label_smoothing", float),
    "--body": ("body", str),
}

#: What a recipe flag's value is called in --help, by its type.
_METAVARS: dict[type, str] = {int: "N", float: "X", str: "NAME"}

#: Where run directories go: ``<RESULTS_ROOT>/<--name or a UTC timestamp>/``.
RESULTS_ROOT = Path("benchmarks/results/finetune")

#: ``trainer:`` keys of a LightningCLI YAML the benchmark takes over (the rest is reported as ignored).
TRAINER_KEYS: dict[str, str] = {
    "max_epochs": "recipe_epochs", "devices": "devices", "accelerator": "accelerator", "strategy": "strategy",
}  # fmt: skip


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"num_classes\": 10}'")
    return value


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's arguments, added to ``parser`` (a CLI sub-command) or to a new parser."""
    from weightport_bench.finetune.run import BenchConfig
    from weightport_bench.finetune.sources import DEFAULT_SOURCES

    d = BenchConfig()
    p = parser or argparse.ArgumentParser(
        prog="weightport bench finetune",
        description="Fine-tune baselines: compare weight sources (and random init) under one recipe per protocol, "
        "over several seeds, with 95% t-intervals and a paired comparison against scratch.",
    )
    p.add_argument("sources", nargs="*", default=[], help="weight sources (same as --source)")
    p.add_argument("--source", action="append", default=[], metavar="SOURCE",
                   help="a weight source: alias, hf:…, timm:…, a path or URL; 'scratch' (or scratch:ARCH) = random "
                   f"init; repeat it (default: {' '.join(DEFAULT_SOURCES)})")  # fmt: skip
    p.add_argument("--source-arch", action="append", default=[], metavar="SOURCE=ARCH",
                   help="the architecture a source's weights fit, when it is not --arch")  # fmt: skip
    p.add_argument("--protocols", nargs="+", default=list(d.protocols), metavar="PROTOCOL",
                   help=f"linear, full, lp-ft (default: {' '.join(d.protocols)})")  # fmt: skip
    p.add_argument("--seeds", nargs="+", type=int, default=list(d.seeds), metavar="SEED",
                   help="one run per seed; intervals need 2 or more "
                   f"(default: {' '.join(map(str, d.seeds))})")  # fmt: skip
    p.add_argument("--arch", default=d.arch,
                   help="backbone of scratch and of sources with no known architecture: timm name, 'timm:NAME' or "
                   "'torchvision:NAME' (default: %(default)s)")  # fmt: skip
    p.add_argument("--dataset", default=d.dataset,
                   help="digits, folder:/path or a directory, torchvision:CIFAR10 (default: %(default)s)")
    p.add_argument("--train-size", type=int, default=d.train_size, metavar="N",
                   help="training images, 0 = all (default: %(default)s)")  # fmt: skip
    p.add_argument("--val-size", type=int, default=d.val_size, metavar="N",
                   help="validation images, 0 = all (default: %(default)s)")
    for flag, (name, kind) in RECIPE_FLAGS.items():
        p.add_argument(flag, dest=f"recipe_{name}", type=kind, default=None, metavar=_METAVARS[kind],
                       help=f"recipe '{name}' for every protocol")
    own = p.add_argument_group("your own model and data (instead of --arch and --dataset)")
    own.add_argument("--model", default=None, metavar="PKG.CLASS", help="a LightningModule class")
    own.add_argument("--data", default=None, metavar="PKG.CLASS", help="a LightningDataModule class")
    own.add_argument("--model-args", type=_json_object, default={}, metavar="JSON", help="the model's init arguments")
    own.add_argument("--data-args", type=_json_object, default={}, metavar="JSON",
                     help="the data module's init arguments")
    own.add_argument("--metric", default=None, metavar="NAME",
                     help="validation metric compared (default: the first of val_top1, val_acc, … the model logs)")
    own.add_argument("--config", type=Path, default=None, metavar="YAML",
                     help="LightningCLI-style YAML: model/data with class_path + init_args, trainer.max_epochs, "
                     "and a bench: section with any of these options by name; the command line wins")  # fmt: skip
    p.add_argument("--devices", type=int, default=d.devices, metavar="N",
                   help="processes (CPU) or GPUs per run (default: %(default)s)")  # fmt: skip
    p.add_argument("--accelerator", default=d.accelerator, metavar="NAME",
                   help="cpu, gpu or auto (default: %(default)s)")
    p.add_argument("--strategy", default=d.strategy, metavar="NAME",
                   help="auto, ddp, ddp_spawn, fsdp (GPUs only) (default: %(default)s)")  # fmt: skip
    p.add_argument("--threads", type=int, default=d.threads, metavar="N",
                   help="torch threads per process, fixed so that a run reproduces (default: %(default)s)")
    p.add_argument("--num-workers", type=int, default=d.num_workers, metavar="N",
                   help="DataLoader workers (default: %(default)s)")
    p.add_argument("--max-batches", type=int, default=None, metavar="N", help="cap batches per epoch (smoke tests)")
    p.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help=f"run directory (default: {RESULTS_ROOT}/<--name or a UTC timestamp>/)")
    p.add_argument("--name", default=None, help=f"name of the run directory under {RESULTS_ROOT}/")
    p.add_argument("--overwrite", action="store_true", help="write into a run directory that already has results")
    p.add_argument("--progress", choices=["lines", "bar", "none"], default=d.progress,
                   help="one line per run, Lightning's bars, or nothing (default: %(default)s)")  # fmt: skip
    p.add_argument("--show-recipes", action="store_true", help="print the recipes and exit")
    p.add_argument("--verbose", action="store_true", help="keep Lightning's own messages and warnings")
    return p


def config_defaults(path: Path, parser: argparse.ArgumentParser) -> tuple[dict[str, Any], list[str]]:
    """Parser defaults from a LightningCLI-style YAML, and the keys it holds that the benchmark ignores.

    Raises:
        UsageError: The file is missing, not a mapping, or its ``bench:`` section names an unknown option.
    """
    import yaml

    if not path.is_file():
        raise UsageError(f"config file not found: {path}", hint="pass the path of a YAML file to --config")
    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document, dict):
        raise UsageError(f"{path} is not a YAML mapping", hint="write model:, data:, trainer: and bench: sections")
    out: dict[str, Any] = {}
    ignored: list[str] = []
    for section in ("model", "data"):
        value = document.get(section)
        if isinstance(value, str):
            out[section] = value
        elif isinstance(value, dict):
            out[section] = value.get("class_path")
            out[f"{section}_args"] = dict(value.get("init_args") or {})
    for key, value in (document.get("trainer") or {}).items():
        if key in TRAINER_KEYS:
            out[TRAINER_KEYS[key]] = value
        else:
            ignored.append(f"trainer.{key}")
    dests = {a.dest for a in parser._actions}
    recipe = {name: f"recipe_{name}" for name, _ in RECIPE_FLAGS.values()}
    for key, value in (document.get("bench") or {}).items():
        name = key.replace("-", "_")
        dest = {"sources": "source"}.get(name) or recipe.get(name) or name
        if dest not in dests or dest in ("config", "sources"):
            raise UsageError(f"unknown option {key!r} in the bench: section of {path}",
                             hint="use the long name of a command-line option, e.g. seeds: [0, 1, 2]")  # fmt: skip
        out[dest] = [value] if dest == "source" and isinstance(value, str) else value
    ignored += [k for k in document if k not in ("model", "data", "trainer", "bench")]
    return out, ignored


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`BenchConfig` the parsed arguments describe."""
    from weightport_bench.finetune.run import BenchConfig
    from weightport_bench.finetune.sources import DEFAULT_SOURCES, parse_source_archs
    from weightport_bench.finetune.user import UserTask

    overrides = {name: getattr(args, f"recipe_{name}") for name, _ in RECIPE_FLAGS.values()}
    sources = [*args.sources, *args.source]
    user = None
    if args.model or args.data:
        if not (args.model and args.data):
            raise UsageError("--model and --data go together", hint="pass both your LightningModule and DataModule")
        user = UserTask(args.model, args.data, args.model_args, args.data_args, args.metric)
        if not sources:
            raise UsageError("with your own model, name the sources to compare",
                             hint="e.g. --source ./pretrained.ckpt --source scratch")  # fmt: skip
    return BenchConfig(
        sources=tuple(sources or DEFAULT_SOURCES),
        protocols=tuple(args.protocols),
        seeds=tuple(args.seeds),
        arch=args.arch,
        source_archs=parse_source_archs(args.source_arch),
        dataset=args.dataset,
        train_size=args.train_size or None,
        val_size=args.val_size or None,
        overrides={k: v for k, v in overrides.items() if v is not None},
        user=user,
        devices=args.devices,
        accelerator=args.accelerator,
        strategy=args.strategy,
        threads=args.threads,
        num_workers=args.num_workers,
        out_dir=run_directory(args),
        progress=args.progress,
        max_batches=args.max_batches,
    )


def run_directory(args: argparse.Namespace) -> Path:
    """``--out``, else ``RESULTS_ROOT/<--name or the UTC time>``."""
    if args.out is not None:
        return Path(args.out)
    return RESULTS_ROOT / (args.name or dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S"))


def check_run_directory(path: Path, overwrite: bool) -> None:
    """Refuse to write over earlier results unless told to.

    Raises:
        UsageError: ``path`` already holds files and ``overwrite`` is false.
    """
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UsageError(f"{path} already holds results", hint="pass another --name or --out, or --overwrite")


def _recipes_table(config: Any) -> Any:
    from rich.table import Table

    recipes = [config.recipe(p).to_dict(config.recipe_fields()) for p in config.protocols]
    table = Table(title="recipes", caption="override: --epochs 5, --lr …")
    table.add_column("field")
    for r in recipes:
        table.add_column(r["protocol"], justify="right")
    for name in recipes[0]:
        if name != "protocol":
            table.add_row(name, *(str(r[name]) for r in recipes))
    return table


def _is_rank_zero() -> bool:
    # Ranks that Lightning starts as new processes carry their rank in the environment.
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


@contextlib.contextmanager
def quiet(verbose: bool) -> Iterator[None]:
    """Without ``verbose``: no Lightning banners or hints, no deprecation warnings from the libraries."""
    if verbose:
        yield
        return
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "pytorch_lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        # Lightning's advice about workers and logging intervals, about a tiny benchmark's loaders.
        warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
        warnings.filterwarnings("ignore", message=r".*smaller than the logging interval.*")
        warnings.filterwarnings("ignore", message=r".*is deprecated.*")
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """What the numbers may depend on: versions, CPU, its kernels, threads, load."""
    import lightning
    import timm
    import torch

    import weightport

    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "timm": timm.__version__,
        "weightport": weightport.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,  # 1, 5, 15 min
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the benchmark; see :func:`run_from_args`."""
    parser = build_parser()
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", type=Path, default=None)
    known, _ = pre.parse_known_args(argv)
    ignored: list[str] = []
    if known.config is not None:
        try:
            defaults, ignored = config_defaults(known.config, parser)
        except WeightportError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    args.config_ignored = ignored
    args.argv = list(sys.argv[1:] if argv is None else argv)
    return run_from_args(args)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed arguments describe (for a CLI that mounts :func:`build_parser`).

    Returns:
        0 on success, 2 on a usage or weightport error (printed as one line and a hint).
    """
    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:  # logs and CI: do not squeeze the table into 80 columns
        console = Console(width=200, highlight=False)
    with quiet(args.verbose):
        try:
            return _run(args, console)
        except WeightportError as exc:
            Console(stderr=True).print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
            return 2


def _run(args: argparse.Namespace, console: Any) -> int:
    from weightport_bench.finetune.recipe import check_names
    from weightport_bench.finetune.report import render_table, write_all
    from weightport_bench.finetune.run import run_grid

    config = config_from_args(args)
    rank_zero = _is_rank_zero()
    for protocol in config.protocols:
        check_names(config.recipe(protocol), own_allowed=config.user is not None)
    specs = config.specs()
    if rank_zero:
        console.print(_recipes_table(config))
        for key in getattr(args, "config_ignored", []):
            console.print(f"note: {key} in {args.config} is not used by the benchmark")
    if args.show_recipes:
        return 0
    if rank_zero:
        check_run_directory(config.out_dir, args.overwrite)
    load_start = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    started, cpu_started = time.perf_counter(), time.process_time()
    when = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")

    def on_start(index: int, total: int, spec: Any, protocol: str, seed: int) -> None:
        if rank_zero and config.progress == "lines":
            arch = f" ({spec.arch})" if spec.arch and config.user is None else ""
            what = f"{spec.label}{arch} / {protocol} / seed {seed}"
            console.print(f"run {index}/{total} ({total - index} to go): {what} …", end="")
            console.file.flush()

    def on_result(row: dict[str, Any]) -> None:
        if config.progress == "lines":
            value = row["score"]
            score = "–" if value is None else f"{100 * value:.1f} %" if 0 <= value <= 1 else f"{value:.4g}"
            console.print(f" {row['metric']} {score} in {row['wall_s']:.1f} s (CPU {row['cpu_s']:.1f} s)")

    rows = run_grid(config, on_result=on_result, on_start=on_start)
    if not rows:  # ranks > 0: rank 0 reports
        return 0
    title = (f"{config.user.model} on {config.user.data}" if config.user is not None
             else f"fine-tune baselines on {config.dataset}")  # fmt: skip
    meta = {
        "title": title,
        "command": " ".join(["weightport bench finetune", *getattr(args, "argv", [])]),
        "started_utc": when,
        "wall_s": round(time.perf_counter() - started, 1),
        "cpu_s": round(time.process_time() - cpu_started, 1),
        "sources": [dataclasses.asdict(s) for s in specs],
        "protocols": list(config.protocols),
        "seeds": list(config.seeds),
        "arch": config.arch if config.user is None else None,
        "dataset": config.dataset if config.user is None else None,
        "train_size": config.train_size,
        "val_size": config.val_size,
        "user": None if config.user is None else config.user.to_dict(),
        "config_ignored": list(getattr(args, "config_ignored", [])),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if not callable(v)},
        "machine": {**machine(), "load_average_start": load_start},
    }
    paths = write_all(rows, config.out_dir, meta)
    console.print(render_table(rows, title=title))
    load = f"; load average {load_start[0]:.1f} at the start, {meta['machine']['load_average'][0]:.1f} at the end" \
        if load_start and meta["machine"]["load_average"] else ""
    console.print(f"{len(rows)} runs in {meta['wall_s']:.0f} s wall, {meta['cpu_s']:.0f} s CPU in this process{load}")
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")
    return 0
