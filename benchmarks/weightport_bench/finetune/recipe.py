"""One fixed training recipe per protocol, stated in the output and overridable.

A :class:`Recipe` is a frozen record; :func:`recipe_for` returns the default of a protocol with the
user's overrides applied, so every run of a benchmark states exactly how it trained.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from weightport.errors import UsageError


@dataclass(frozen=True)
class Recipe:
    """How one protocol trains.

    Attributes:
        protocol: ``linear`` (frozen body, head only), ``full`` or ``lp-ft`` (probe, then full).
        optimizer: A name from :data:`OPTIMIZERS`.
        lr: Learning rate of the body (and of the head when ``head_lr`` is ``None``).
        head_lr: Learning rate of the freshly initialised classifier head.
        weight_decay: Decoupled weight decay.
        schedule: A name from :data:`SCHEDULES`, stepped once per optimizer step.
        epochs: Epochs in total (for ``lp-ft``: probe epochs included).
        probe_epochs: Epochs with a frozen body before everything trains (``lp-ft`` only).
        image_size: Side of the square input images, in pixels.
        batch_size: Images per optimizer step on each device.
        augmentation: A name from ``weightport_bench.finetune.data.AUGMENTATIONS``.
        label_smoothing: Cross-entropy label smoothing (the built-in model only).
        body: The submodule the weights load into, and that ``linear`` (always) and ``lp-ft`` (in
            its probe epochs) freeze; everything else trains from the start.
    """

    protocol: str
    optimizer: str = "adamw"
    lr: float = 1e-3
    head_lr: float | None = None
    weight_decay: float = 1e-4
    schedule: str = "cosine"
    epochs: int = 3
    probe_epochs: int = 0
    image_size: int = 48
    batch_size: int = 32
    augmentation: str = "affine"
    label_smoothing: float = 0.0
    body: str = "backbone"

    def replace(self, **changes: Any) -> Recipe:
        """A copy with some fields changed; ``None`` values mean "keep the default"."""
        changes = {k: v for k, v in changes.items() if v is not None}
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise UsageError(
                f"unknown recipe field(s) {unknown}",
                hint=f"recipe fields are {[f.name for f in dataclasses.fields(self)]}",
            )
        return dataclasses.replace(self, **changes)

    def to_dict(self, fields: Iterable[str] | None = None) -> dict[str, Any]:
        """The recipe as plain JSON types (only ``fields`` when given)."""
        out = dataclasses.asdict(self)
        return out if fields is None else {k: out[k] for k in fields}

    def frozen_epochs(self) -> int | None:
        """Epochs during which the body stays frozen: ``None`` means all of them."""
        return PROTOCOLS[self.protocol]["frozen_epochs"](self)


# Why these numbers: `make demo` compares four sources under two protocols over three seeds (24
# runs) in about 5 minutes on 2 cores, so a run gets about 12 s. On digits at 48 px with 600
# training images and 3 epochs a linear probe takes about 5 s and a full fine-tune 15-30 s
# (EfficientNet-Lite0 to Lite2, 2 threads); 32 px was no faster (these small inputs cost per
# layer, not per pixel) and less accurate. Small affine jitter keeps scratch from memorising
# the few images. A linear probe takes a larger learning rate than a fine-tune because only the
# head moves.
PROTOCOLS: dict[str, dict[str, Any]] = {
    "linear": {
        "recipe": Recipe(protocol="linear", lr=1e-2, epochs=3, weight_decay=0.0),
        "frozen_epochs": lambda r: None,
    },
    "full": {
        "recipe": Recipe(protocol="full", lr=1e-3, head_lr=1e-2, epochs=3),
        "frozen_epochs": lambda r: 0,
    },
    "lp-ft": {
        "recipe": Recipe(protocol="lp-ft", lr=1e-3, head_lr=1e-2, epochs=4, probe_epochs=1),
        "frozen_epochs": lambda r: r.probe_epochs,
    },
}


def recipe_for(protocol: str, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """The default recipe of ``protocol`` with ``overrides`` applied.

    Raises:
        UsageError: An unknown protocol or recipe field.
    """
    entry = PROTOCOLS.get(protocol)
    if entry is None:
        raise UsageError(f"unknown protocol {protocol!r}", hint=f"choose from {sorted(PROTOCOLS)}")
    return entry["recipe"].replace(**dict(overrides or {}))


OptimizerFactory = Callable[[Iterable[dict[str, Any]], "Recipe"], torch.optim.Optimizer]

OPTIMIZERS: dict[str, OptimizerFactory] = {
    "adamw": lambda groups, r: torch.optim.AdamW(groups, lr=r.lr, weight_decay=r.weight_decay),
    "sgd": lambda groups, r: torch.optim.SGD(groups, lr=r.lr, momentum=0.9, weight_decay=r.weight_decay),
}

SchedulerFactory = Callable[[torch.optim.Optimizer, int], torch.optim.lr_scheduler.LRScheduler]

SCHEDULES: dict[str, SchedulerFactory] = {
    "cosine": lambda opt, steps: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps)),
    "constant": lambda opt, steps: torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0),
}


#: ``optimizer`` value meaning "the module's own ``configure_optimizers``" (a user's model only;
#: ``lr``, ``head_lr``, ``weight_decay`` and ``schedule`` then do not apply).
OWN_OPTIMIZER = "module"


def check_names(recipe: Recipe, own_allowed: bool = False) -> None:
    """Refuse an optimizer or schedule name that does not exist (before anything trains).

    Args:
        recipe: The recipe.
        own_allowed: The model has its own ``configure_optimizers`` (:data:`OWN_OPTIMIZER` is allowed).

    Raises:
        UsageError: An unknown optimizer or schedule name.
    """
    if own_allowed and recipe.optimizer == OWN_OPTIMIZER:
        return
    for name, table in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
        if getattr(recipe, name) not in table:
            raise UsageError(f"unknown {name} {getattr(recipe, name)!r}", hint=f"choose from {sorted(table)}")


def build_optimizer(
    recipe: Recipe, body: Iterable[nn.Parameter], rest: Iterable[nn.Parameter], total_steps: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler]:
    """Optimizer and per-step scheduler for ``recipe``.

    Args:
        recipe: The recipe.
        body: Parameters of the body (``recipe.body``): learning rate ``lr``, left out under ``linear``.
        rest: Every other parameter (the new head): learning rate ``head_lr`` (or ``lr``).
        total_steps: Optimizer steps of the whole run (the schedule's length).

    The body's parameters are always in the optimizer unless it never trains (frozen ones simply
    get no gradient, which the optimizers skip), so ``lp-ft`` keeps one optimizer across the unfreeze.

    Raises:
        UsageError: An unknown optimizer or schedule name.
    """
    check_names(recipe)
    groups = [{"params": list(rest), "lr": recipe.head_lr or recipe.lr}]
    if recipe.frozen_epochs() is not None:
        groups.append({"params": list(body), "lr": recipe.lr})
    optimizer = OPTIMIZERS[recipe.optimizer](groups, recipe)
    return optimizer, SCHEDULES[recipe.schedule](optimizer, total_steps)
