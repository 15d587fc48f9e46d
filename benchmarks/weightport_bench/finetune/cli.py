"""``weightport bench finetune`` and ``benchmarks/finetune.py``: the command line of the benchmark."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import platform
from pathlib import Path
from typing import Any

from weightport.errors import WeightportError

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
}


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """The benchmark's arguments, added to ``parser`` (a CLI sub-command) or to a new parser."""
    from weightport_bench.finetune.run import BenchConfig

    d = BenchConfig()
    p = parser or argparse.ArgumentParser(
        prog="weightport bench finetune",
        description="Fine-tune baselines: compare weight sources (and random init) under one recipe per protocol.",
    )
    p.add_argument(
        "sources",
        nargs="*",
        default=list(d.sources),
        help="weight sources, 'scratch' = random init (default: %(default)s)",
    )
    p.add_argument(
        "--protocols", nargs="+", default=list(d.protocols), help="linear, full, lp-ft (default: %(default)s)"
    )
    p.add_argument(
        "--seeds", nargs="+", type=int, default=list(d.seeds), help="one run per seed (default: %(default)s)"
    )
    p.add_argument(
        "--arch", default=d.arch, help="backbone: timm name, 'timm:NAME' or 'torchvision:NAME' (default: %(default)s)"
    )
    p.add_argument(
        "--dataset",
        default=d.dataset,
        help="digits, folder:/path or a directory, torchvision:CIFAR10 (default: %(default)s)",
    )
    p.add_argument(
        "--train-size", type=int, default=d.train_size, help="training images, 0 = all (default: %(default)s)"
    )
    p.add_argument("--val-size", type=int, default=d.val_size, help="validation images, 0 = all (default: %(default)s)")
    for flag, (name, kind) in RECIPE_FLAGS.items():
        p.add_argument(flag, dest=f"recipe_{name}", type=kind, default=None, help=f"recipe '{name}' for every protocol")
    p.add_argument(
        "--devices", type=int, default=d.devices, help="processes (CPU) or GPUs per run (default: %(default)s)"
    )
    p.add_argument("--accelerator", default=d.accelerator, help="cpu, gpu or auto (default: %(default)s)")
    p.add_argument(
        "--strategy", default=d.strategy, help="auto, ddp, ddp_spawn, fsdp (GPUs only) (default: %(default)s)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (default: cores / devices)")
    p.add_argument("--num-workers", type=int, default=d.num_workers, help="DataLoader workers (default: %(default)s)")
    p.add_argument("--max-batches", type=int, default=None, help="cap batches per epoch (smoke tests)")
    p.add_argument("--out", type=Path, default=d.out_dir, help="output directory (default: %(default)s)")
    p.add_argument(
        "--progress", choices=["rich", "tqdm", "none"], default=d.progress, help="progress bars (default: %(default)s)"
    )
    p.add_argument("--show-recipes", action="store_true", help="print the recipes and exit")
    p.add_argument("--verbose", action="store_true", help="keep Lightning's own messages")
    return p


def config_from_args(args: argparse.Namespace) -> Any:
    """The :class:`BenchConfig` the parsed arguments describe."""
    from weightport_bench.finetune.run import BenchConfig

    overrides = {name: getattr(args, f"recipe_{name}") for name, _ in RECIPE_FLAGS.values()}
    return BenchConfig(
        sources=tuple(args.sources),
        protocols=tuple(args.protocols),
        seeds=tuple(args.seeds),
        arch=args.arch,
        dataset=args.dataset,
        train_size=args.train_size or None,
        val_size=args.val_size or None,
        overrides={k: v for k, v in overrides.items() if v is not None},
        devices=args.devices,
        accelerator=args.accelerator,
        strategy=args.strategy,
        threads=args.threads,
        num_workers=args.num_workers,
        out_dir=args.out,
        progress=args.progress,
        max_batches=args.max_batches,
    )


def _recipes_table(config: Any) -> Any:
    from rich.table import Table

    recipes = [config.recipe(p) for p in config.protocols]
    table = Table(title="recipes")
    table.add_column("field")
    for r in recipes:
        table.add_column(r.protocol, justify="right")
    for f in dataclasses.fields(recipes[0]):
        if f.name != "protocol":
            table.add_row(f.name, *(str(getattr(r, f.name)) for r in recipes))
    return table


def _is_rank_zero() -> bool:
    # Ranks that Lightning starts as new processes carry their rank in the environment.
    return int(os.environ.get("LOCAL_RANK", "0")) == 0 and int(os.environ.get("NODE_RANK", "0")) == 0


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``) and run the benchmark; see :func:`run_from_args`."""
    return run_from_args(build_parser().parse_args(argv))


def run_from_args(args: argparse.Namespace) -> int:
    """Run the benchmark the parsed arguments describe (for a CLI that mounts :func:`build_parser`).

    Returns:
        0 on success, 2 on a usage or weightport error (printed as one line and a hint).
    """
    from rich.console import Console

    from weightport_bench.finetune.report import render_table, write_all
    from weightport_bench.finetune.run import run_grid

    console = Console()
    if not console.is_terminal:  # logs and CI: do not squeeze the table into 80 columns
        console = Console(width=160)
    if not args.verbose:  # the table is the output; Lightning's per-run banners drown it
        for name in ("lightning.pytorch", "lightning.fabric"):
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
        if _is_rank_zero():
            console.print(_recipes_table(config))
        if args.show_recipes:
            return 0
        rows = run_grid(config)
    except WeightportError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        return 2
    if not rows:  # ranks > 0: rank 0 reports
        return 0
    import torch

    meta = {
        "arch": config.arch,
        "dataset": config.dataset,
        "sources": list(config.sources),
        "protocols": list(config.protocols),
        "seeds": list(config.seeds),
        "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if not callable(v)},
        "torch": torch.__version__,
        "platform": platform.platform(),
        "threads": torch.get_num_threads(),
    }
    paths = write_all(rows, config.out_dir, meta)
    console.print(render_table(rows, title=f"fine-tune baselines: {config.arch} on {config.dataset}"))
    for kind, path in paths.items():
        console.print(f"{kind}: {path}")
    return 0
