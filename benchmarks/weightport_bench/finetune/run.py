"""The benchmark grid: every weight source × protocol × seed, one Lightning ``Trainer`` per run."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch

from weightport_bench.finetune.data import DataSpec, build_datamodule
from weightport_bench.finetune.dist import WeightsFingerprint, build_strategy
from weightport_bench.finetune.model import FineTuner
from weightport_bench.finetune.recipe import Recipe, recipe_for

logger = logging.getLogger("weightport")

#: The source name that means "random init, no weights loaded".
SCRATCH = "scratch"


@dataclass(frozen=True)
class BenchConfig:
    """Everything one benchmark invocation needs.

    Attributes:
        sources: Weight source strings (anything ``from_pretrained`` takes) and/or ``scratch``.
        protocols: Names from ``weightport_bench.finetune.recipe.PROTOCOLS``.
        seeds: One run per seed for every source and protocol.
        arch: Backbone architecture (``tf_efficientnet_lite0``, ``timm:resnet10t``, ``torchvision:resnet18``).
        dataset: ``digits``, ``folder:/path`` or ``torchvision:CIFAR10``.
        train_size: Training images to use (``None``: all).
        val_size: Validation images to use (``None``: all).
        overrides: Recipe fields that replace every protocol's default (``{"epochs": 1}``).
        devices: Processes (CPU) or GPUs per run.
        accelerator: ``cpu``, ``gpu`` or ``auto``.
        strategy: ``auto``, ``ddp``, ``ddp_spawn`` or ``fsdp``.
        threads: torch threads per process (``None``: the machine's cores shared among the devices).
        num_workers: DataLoader workers.
        out_dir: Where the reports are written.
        progress: ``rich``, ``tqdm`` or ``none``.
        max_batches: Cap on training/validation batches per epoch (tests and smoke runs).
    """

    sources: tuple[str, ...] = ("efficientnet_lite0", SCRATCH)
    protocols: tuple[str, ...] = ("linear", "full")
    seeds: tuple[int, ...] = (0,)
    arch: str = "tf_efficientnet_lite0"
    dataset: str = "digits"
    train_size: int | None = 1000
    val_size: int | None = 300
    overrides: dict[str, Any] = field(default_factory=dict)
    devices: int = 1
    accelerator: str = "cpu"
    strategy: str = "auto"
    threads: int | None = None
    num_workers: int = 0
    out_dir: Path = Path("benchmarks/results/finetune")
    progress: str = "rich"
    max_batches: int | None = None

    def recipe(self, protocol: str) -> Recipe:
        """The recipe ``protocol`` trains with here (its default plus the overrides)."""
        return recipe_for(protocol, self.overrides)


@dataclass
class _Loaded:
    model: FineTuner
    report: dict[str, Any] | None
    stats: tuple[tuple[float, ...], tuple[float, ...]] | None


def load_model(source: str, arch: str, num_classes: int, recipe: Recipe) -> _Loaded:
    """Build the model and load ``source`` into its backbone (``scratch``: random init).

    The mean/std returned are the source's when it states them, else the architecture's.
    """
    if source == SCRATCH:
        model = FineTuner(arch=arch, num_classes=num_classes, recipe=recipe)
        return _Loaded(model, None, model.arch_stats)
    from weightport.registry.resolve import resolve

    model = FineTuner.from_pretrained(source, arch=arch, num_classes=num_classes, recipe=recipe, into="backbone")
    pre = resolve(source).preprocessing
    stats = (tuple(pre.mean), tuple(pre.std)) if pre is not None and pre.mean and pre.std else model.arch_stats
    return _Loaded(model, model.weightport_report.to_dict(), stats)


class Throughput(L.Callback):
    """Training time (validation excluded) and images seen on all ranks; rank 0 writes them as JSON."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.train_s = 0.0
        self.images = 0
        self._epoch_start = 0.0
        self._val_start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._epoch_start = time.perf_counter()

    def on_validation_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._epoch_start += time.perf_counter() - self._val_start

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        self.images += len(batch[1]) * trainer.world_size

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_s += time.perf_counter() - self._epoch_start

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.path.write_text(json.dumps({"train_s": self.train_s, "images": self.images}))


#: Progress bars by name; ``none`` turns them off.
PROGRESS: dict[str, Callable[[], L.Callback | None]] = {
    "rich": lambda: _rich_bar(),
    "tqdm": lambda: L.pytorch.callbacks.TQDMProgressBar(),
    "none": lambda: None,
}


def _rich_bar() -> L.Callback:
    from lightning.pytorch.callbacks import RichProgressBar

    return RichProgressBar(leave=False)


def _threads(config: BenchConfig) -> int:
    return config.threads or max(1, (os.cpu_count() or 1) // max(1, config.devices))


def _trainer(config: BenchConfig, recipe: Recipe, run_dir: Path) -> tuple[L.Trainer, WeightsFingerprint]:
    fingerprint = WeightsFingerprint(run_dir / "weights.json")
    callbacks: list[L.Callback] = [fingerprint, Throughput(run_dir / "throughput.json")]
    bar = PROGRESS[config.progress]()
    if bar is not None:
        callbacks.append(bar)
    limit = config.max_batches  # None: every batch
    trainer = L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=build_strategy(config.strategy, config.devices, unfreezes=recipe.protocol == "lp-ft"),
        max_epochs=recipe.epochs,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bar is not None,
        num_sanity_val_steps=0,
        limit_train_batches=limit,
        limit_val_batches=limit,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )
    return trainer, fingerprint


def _float(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else float(value)


def _provenance(report: dict[str, Any] | None) -> dict[str, Any]:
    if report is None:
        return {"source_uri": SCRATCH, "sha256": None, "revision": None, "coverage": None, "reinitialized": None}
    source = report.get("source") or {}
    reinit = report.get("reinitialized")
    return {
        "source_uri": source.get("uri"),
        "sha256": source.get("sha256"),
        "revision": source.get("revision") or (source.get("meta") or {}).get("revision"),
        "coverage": report.get("coverage"),
        "reinitialized": len(reinit) if isinstance(reinit, (list, tuple, dict)) else reinit,
    }


def run_one(config: BenchConfig, source: str, protocol: str, seed: int) -> dict[str, Any] | None:
    """Train one source under one protocol with one seed; the result row (``None`` on ranks > 0)."""
    recipe = config.recipe(protocol)
    torch.set_num_threads(_threads(config))
    spec = DataSpec(
        image_size=recipe.image_size,
        batch_size=recipe.batch_size,
        augmentation=recipe.augmentation,
        train_size=config.train_size,
        val_size=config.val_size,
        num_workers=config.num_workers,
    )
    datamodule = build_datamodule(config.dataset, spec)
    datamodule.prepare_data()
    datamodule.setup("fit")
    L.seed_everything(seed, workers=True, verbose=False)
    started = time.perf_counter()
    loaded = load_model(source, config.arch, int(datamodule.num_classes or 0), recipe)
    load_s = time.perf_counter() - started
    if loaded.stats is not None:
        datamodule.normalise_with(*loaded.stats)
    # Rank 0 writes what its callbacks measured here; files also come back from spawned processes.
    with tempfile.TemporaryDirectory(prefix="weightport-finetune-") as tmp:
        trainer, _ = _trainer(config, recipe, Path(tmp))
        trainer.fit(loaded.model, datamodule=datamodule)
        wall_s = time.perf_counter() - started
        if not trainer.is_global_zero:
            return None
        weights = json.loads((Path(tmp) / "weights.json").read_text())
        speed = json.loads((Path(tmp) / "throughput.json").read_text())
    metrics = dict(trainer.callback_metrics)
    return {
        "source": source,
        "protocol": protocol,
        "seed": seed,
        "arch": config.arch,
        "dataset": config.dataset,
        "num_classes": datamodule.num_classes,
        "train_images": datamodule.train_images,
        "val_images": datamodule.val_images,
        "epochs": trainer.current_epoch,
        "top1": _float(metrics, "val_top1"),
        "top5": _float(metrics, "val_top5"),
        "train_loss": _float(metrics, "train_loss"),
        "val_loss": _float(metrics, "val_loss"),
        "val_seen": _float(metrics, "val_seen"),
        "wall_s": round(wall_s, 3),
        "load_s": round(load_s, 3),
        "train_s": round(speed["train_s"], 3),
        "images_per_s": round(speed["images"] / speed["train_s"], 2) if speed["train_s"] > 0 else None,
        **loaded.model.parameter_counts(),
        **_provenance(loaded.report),
        "mean": list(datamodule.spec.mean),
        "std": list(datamodule.spec.std),
        "strategy": config.strategy,
        "devices": config.devices,
        "world_size": trainer.world_size,
        "weights_identical": weights["identical"],
        "weights_ranks": weights["ranks"],
        "weights_fingerprint": weights["fingerprint"],
        "weights_per_rank": weights["per_rank"],
        "recipe": recipe.to_dict(),
    }


def run_grid(config: BenchConfig, on_result: Callable[[dict[str, Any]], None] | None = None) -> list[dict[str, Any]]:
    """Every source × protocol × seed of ``config``, in that order; rows only on rank 0."""
    rows: list[dict[str, Any]] = []
    for source in config.sources:
        for protocol in config.protocols:
            for seed in config.seeds:
                logger.info("fine-tune benchmark: %s / %s / seed %d", source, protocol, seed)
                row = run_one(config, source, protocol, seed)
                if row is not None:
                    rows.append(row)
                    if on_result is not None:
                        on_result(row)
    return rows
