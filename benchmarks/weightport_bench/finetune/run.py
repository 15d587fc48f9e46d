"""The benchmark grid: every weight source × protocol × seed, one Lightning ``Trainer`` per run.

Each run is made reproducible on one machine: the seed is set for Python, NumPy, torch and the
DataLoader workers right before the data and model are built, torch runs its deterministic
algorithms, and the torch thread count is fixed (``BenchConfig.threads``, recorded with the
results), since a different count splits float reductions differently. What still differs between
machines (CPU kernels) is measured and stated in the README, not hidden.
"""

from __future__ import annotations

import json
import logging
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
from weightport_bench.finetune.sources import DEFAULT_SOURCES, SourceSpec, source_specs
from weightport_bench.finetune.user import (
    USER_FIELDS,
    FreezeBody,
    UserTask,
    build_user_model,
    first_batch_size,
    parameter_counts,
    pick_metric,
    use_recipe_optimizer,
)

logger = logging.getLogger("weightport.bench")

#: The metric the built-in model is compared by.
BUILTIN_METRIC = "val_top1"


@dataclass(frozen=True)
class BenchConfig:
    """Everything one benchmark invocation needs.

    Attributes:
        sources: Weight source strings (anything ``from_pretrained`` takes) and/or ``scratch``.
        protocols: Names from ``weightport_bench.finetune.recipe.PROTOCOLS``.
        seeds: One run per seed for every source and protocol.
        arch: Backbone architecture of ``scratch`` and of sources with no known architecture.
        source_archs: ``{source: arch}`` for sources whose architecture is not ``arch``.
        dataset: ``digits``, ``folder:/path`` or ``torchvision:CIFAR10`` (the built-in model).
        train_size: Training images to use (``None``: all).
        val_size: Validation images to use (``None``: all).
        overrides: Recipe fields that replace every protocol's default (``{"epochs": 1}``).
        user: A user's own model and data classes (then ``arch`` and ``dataset`` do not apply).
        devices: Processes (CPU) or GPUs per run.
        accelerator: ``cpu``, ``gpu`` or ``auto``.
        strategy: ``auto``, ``ddp``, ``ddp_spawn`` or ``fsdp``.
        threads: torch threads per process, fixed so that a run gives the same numbers again.
        num_workers: DataLoader workers.
        out_dir: Where the results are written.
        progress: ``lines`` (one line per run), ``bar`` (Lightning's bars) or ``none``.
        max_batches: Cap on training/validation batches per epoch (tests and smoke runs).
    """

    sources: tuple[str, ...] = DEFAULT_SOURCES
    protocols: tuple[str, ...] = ("linear", "full")
    seeds: tuple[int, ...] = (0, 1, 2)
    arch: str = "tf_efficientnet_lite0"
    source_archs: dict[str, str] = field(default_factory=dict)
    dataset: str = "digits"
    train_size: int | None = 600
    val_size: int | None = 300
    overrides: dict[str, Any] = field(default_factory=dict)
    user: UserTask | None = None
    devices: int = 1
    accelerator: str = "cpu"
    strategy: str = "auto"
    threads: int = 2
    num_workers: int = 0
    out_dir: Path = Path("benchmarks/results/finetune/run")
    progress: str = "lines"
    max_batches: int | None = None

    def recipe(self, protocol: str) -> Recipe:
        """The recipe ``protocol`` trains with here (its default plus the overrides)."""
        return recipe_for(protocol, self.overrides)

    def recipe_fields(self) -> tuple[str, ...] | None:
        """The recipe fields that apply (``None``: all of them)."""
        return USER_FIELDS if self.user is not None else None

    def specs(self) -> list[SourceSpec]:
        """The compared sources with their architectures."""
        return source_specs(self.sources, None if self.user is not None else self.arch, self.source_archs)

    def runs(self) -> list[tuple[SourceSpec, str, int]]:
        """Every (source, protocol, seed), in the order they run."""
        return [(s, p, seed) for s in self.specs() for p in self.protocols for seed in self.seeds]


@dataclass
class _Built:
    """What one run trains: model, data, the load report, and its own row fields and callbacks."""

    model: L.LightningModule
    datamodule: L.LightningDataModule
    report: dict[str, Any] | None
    fields: dict[str, Any] = field(default_factory=dict)
    callbacks: list[L.Callback] = field(default_factory=list)


def _build_builtin(config: BenchConfig, spec: SourceSpec, recipe: Recipe) -> _Built:
    """The benchmark's own model on a dataset string; inputs normalised with the source's statistics."""
    from weightport.registry.resolve import resolve

    arch = spec.arch or config.arch
    data_spec = DataSpec(
        image_size=recipe.image_size,
        batch_size=recipe.batch_size,
        augmentation=recipe.augmentation,
        train_size=config.train_size,
        val_size=config.val_size,
        num_workers=config.num_workers,
    )
    datamodule = build_datamodule(config.dataset, data_spec)
    datamodule.prepare_data()
    datamodule.setup("fit")
    num_classes = int(datamodule.num_classes or 0)
    report = None
    if spec.source is None:
        model = FineTuner(arch=arch, num_classes=num_classes, recipe=recipe)
        stats = model.arch_stats
    else:
        model = FineTuner.from_pretrained(spec.source, arch=arch, num_classes=num_classes, recipe=recipe,
                                          into="backbone")  # fmt: skip
        report = model.weightport_report.to_dict()
        pre = resolve(spec.source).preprocessing
        stats = (tuple(pre.mean), tuple(pre.std)) if pre is not None and pre.mean and pre.std else model.arch_stats
    if stats is not None:
        datamodule.normalise_with(*stats)
    fields = {
        "arch": arch,
        "dataset": config.dataset,
        "num_classes": num_classes,
        "train_images": datamodule.train_images,
        "val_images": datamodule.val_images,
        "mean": list(datamodule.spec.mean),
        "std": list(datamodule.spec.std),
        **model.parameter_counts(),
    }
    return _Built(model, datamodule, report, fields)


def _build_user(config: BenchConfig, spec: SourceSpec, recipe: Recipe) -> _Built:
    """A user's model and data module: weights into ``recipe.body``, recipe optimizer and freezing."""
    assert config.user is not None
    model_cls, data_cls = config.user.classes()
    datamodule = data_cls(**dict(config.user.data_args))
    model, report = build_user_model(config.user, model_cls, spec.source, recipe)
    use_recipe_optimizer(model, recipe)
    fields = {"arch": config.user.model, "dataset": config.user.data, **parameter_counts(model, recipe)}
    return _Built(model, datamodule, report, fields, [FreezeBody(recipe.body, recipe.frozen_epochs())])


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
        self.images += first_batch_size(batch) * trainer.world_size

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.train_s += time.perf_counter() - self._epoch_start

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.is_global_zero:
            self.path.write_text(json.dumps({"train_s": self.train_s, "images": self.images}))


def _trainer(config: BenchConfig, recipe: Recipe, run_dir: Path, extra: list[L.Callback]) -> L.Trainer:
    callbacks: list[L.Callback] = [
        WeightsFingerprint(run_dir / "weights.json"), Throughput(run_dir / "throughput.json"), *extra,
    ]  # fmt: skip
    bar = config.progress == "bar"
    if bar:
        callbacks.append(L.pytorch.callbacks.TQDMProgressBar())
    return L.Trainer(
        accelerator=config.accelerator,
        devices=config.devices,
        strategy=build_strategy(config.strategy, config.devices, unfreezes=recipe.protocol == "lp-ft"),
        max_epochs=recipe.epochs,
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bar,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=recipe.epochs,  # the score is the last epoch's: validate once, at the end
        limit_train_batches=config.max_batches,
        limit_val_batches=config.max_batches,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
    )


def _float(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return None if value is None else float(value)


def _provenance(report: dict[str, Any] | None) -> dict[str, Any]:
    if report is None:
        return {"source_uri": None, "sha256": None, "revision": None, "coverage": None, "reinitialized": None}
    source = report.get("source") or {}
    reinit = report.get("reinitialized")
    return {
        "source_uri": source.get("uri"),
        "sha256": source.get("sha256"),
        "revision": source.get("revision") or (source.get("meta") or {}).get("revision"),
        "coverage": report.get("coverage"),
        "reinitialized": len(reinit) if isinstance(reinit, (list, tuple, dict)) else reinit,
    }


def run_one(config: BenchConfig, spec: SourceSpec, protocol: str, seed: int) -> dict[str, Any] | None:
    """Train one source under one protocol with one seed; the result row (``None`` on ranks > 0)."""
    recipe = config.recipe(protocol)
    torch.set_num_threads(config.threads)
    L.seed_everything(seed, workers=True, verbose=False)  # before the data and the model are built
    started, cpu_started = time.perf_counter(), time.process_time()
    built = _build_user(config, spec, recipe) if config.user is not None else _build_builtin(config, spec, recipe)
    load_s = time.perf_counter() - started
    # Rank 0 writes what its callbacks measured here; files also come back from spawned processes.
    with tempfile.TemporaryDirectory(prefix="weightport-finetune-") as tmp:
        trainer = _trainer(config, recipe, Path(tmp), built.callbacks)
        trainer.fit(built.model, datamodule=built.datamodule)
        wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu_started
        if not trainer.is_global_zero:
            return None
        weights = json.loads((Path(tmp) / "weights.json").read_text())
        speed = json.loads((Path(tmp) / "throughput.json").read_text())
    metrics = dict(trainer.callback_metrics)
    metric = BUILTIN_METRIC if config.user is None else pick_metric(metrics, config.user.metric)
    images_per_s = speed["images"] / speed["train_s"] if speed["train_s"] > 0 else None
    return {
        "source": spec.label,
        "protocol": protocol,
        "seed": seed,
        **built.fields,
        "epochs": trainer.current_epoch,
        "metric": metric,
        "score": _float(metrics, metric),
        "top1": _float(metrics, "val_top1"),
        "top5": _float(metrics, "val_top5"),
        "train_loss": _float(metrics, "train_loss"),
        "val_loss": _float(metrics, "val_loss"),
        "val_seen": _float(metrics, "val_seen"),
        "wall_s": round(wall_s, 3),
        "cpu_s": round(cpu_s, 3),
        "load_s": round(load_s, 3),
        "train_s": round(speed["train_s"], 3),
        "images_per_s": None if images_per_s is None else round(images_per_s, 2),
        "images_per_s_per_device": None if images_per_s is None else round(images_per_s / trainer.world_size, 2),
        **_provenance(built.report),
        "accelerator": config.accelerator,
        "strategy": config.strategy,
        "devices": config.devices,
        "world_size": trainer.world_size,
        "threads": torch.get_num_threads(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "weights_identical": weights["identical"],
        "weights_ranks": weights["ranks"],
        "weights_fingerprint": weights["fingerprint"],
        "weights_per_rank": weights["per_rank"],
        "recipe": recipe.to_dict(config.recipe_fields()),
    }


#: Called before each run with (index from 1, total, source, protocol, seed).
OnStart = Callable[[int, int, SourceSpec, str, int], None]


def run_grid(
    config: BenchConfig,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    on_start: OnStart | None = None,
) -> list[dict[str, Any]]:
    """Every source × protocol × seed of ``config``, in that order; rows only on rank 0."""
    rows: list[dict[str, Any]] = []
    runs = config.runs()
    for index, (spec, protocol, seed) in enumerate(runs, start=1):
        if on_start is not None:
            on_start(index, len(runs), spec, protocol, seed)
        row = run_one(config, spec, protocol, seed)
        if row is not None:
            rows.append(row)
            if on_result is not None:
                on_result(row)
    return rows
