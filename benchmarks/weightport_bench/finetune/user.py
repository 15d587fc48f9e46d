"""A team's own LightningModule and LightningDataModule under the benchmark.

``--model pkg.Mod --data pkg.DataModule`` (or ``model:``/``data:`` with ``class_path`` and
``init_args`` in a LightningCLI-style YAML) name the classes; each run builds both from their init
arguments, loads the source into the model's ``recipe.body`` submodule with weightport
(``build_and_load(..., into=body)``), and trains with the recipe:

- freezing: :class:`FreezeBody` keeps the body frozen (no gradient, eval mode so BatchNorm
  statistics stay) for ``linear`` (always) and ``lp-ft`` (its probe epochs);
- optimizer: the recipe's (``optimizer``, ``lr`` for the body, ``head_lr`` for the rest,
  ``weight_decay``, ``schedule``) replaces the module's ``configure_optimizers``, so every source
  trains the same stated way; ``--optimizer module`` keeps the module's own instead;
- the score: the validation metric the module logs (``--metric``, else the first of
  :data:`METRIC_NAMES` it logs).

The data module's own batch size, transforms and normalisation are used as they are.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from torch import nn

from weightport.errors import UsageError
from weightport_bench.finetune.recipe import OWN_OPTIMIZER, Recipe, build_optimizer, check_names

#: Metrics tried, in order, when ``--metric`` is not given (higher is better for all of them).
METRIC_NAMES: tuple[str, ...] = ("val_top1", "val_acc", "val_accuracy", "val/acc", "val/accuracy", "val_f1")

#: Recipe fields that apply to a user's model (image size, batch size, augmentation and label
#: smoothing belong to its data module and training_step).
USER_FIELDS: tuple[str, ...] = (
    "protocol", "optimizer", "lr", "head_lr", "weight_decay", "schedule", "epochs", "probe_epochs", "body",
)  # fmt: skip


def import_class(path: str, kind: str) -> type:
    """The class ``pkg.module.Name`` (or ``pkg.module:Name``) names.

    Raises:
        UsageError: The module cannot be imported or has no such name.
    """
    module_name, sep, name = path.rpartition(":") if ":" in path else path.rpartition(".")
    if not sep or not module_name or not name:
        raise UsageError(f"--{kind} {path!r} is not a dotted class path", hint=f"e.g. --{kind} mypkg.models.MyModule")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"cannot import {module_name!r} for --{kind} {path}: {exc}",
            hint="install the package, or put the directory that holds it on PYTHONPATH",
        ) from exc
    cls = getattr(module, name, None)
    if not isinstance(cls, type):
        raise UsageError(f"{module_name!r} has no class {name!r}", hint=f"check the name given to --{kind}")
    return cls


@dataclass(frozen=True)
class UserTask:
    """A user's model and data classes with their init arguments.

    Attributes:
        model: Class path of the LightningModule.
        data: Class path of the LightningDataModule.
        model_args: Keyword arguments of the model's ``__init__``.
        data_args: Keyword arguments of the data module's ``__init__``.
        metric: The validation metric compared (``None``: the first of :data:`METRIC_NAMES` logged).
    """

    model: str
    data: str
    model_args: Mapping[str, Any] = field(default_factory=dict)
    data_args: Mapping[str, Any] = field(default_factory=dict)
    metric: str | None = None

    def classes(self) -> tuple[type[L.LightningModule], type[L.LightningDataModule]]:
        """Both classes, checked to be a LightningModule and a LightningDataModule.

        Raises:
            UsageError: Either cannot be imported, or is not what it should be.
        """
        model_cls, data_cls = import_class(self.model, "model"), import_class(self.data, "data")
        if not issubclass(model_cls, L.LightningModule):
            raise UsageError(f"--model {self.model} is not a LightningModule", hint="pass a LightningModule subclass")
        if not issubclass(data_cls, L.LightningDataModule):
            raise UsageError(
                f"--data {self.data} is not a LightningDataModule", hint="pass a LightningDataModule subclass"
            )
        return model_cls, data_cls

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types, for the results."""
        return {"model": self.model, "data": self.data, "model_args": dict(self.model_args),
                "data_args": dict(self.data_args), "metric": self.metric}  # fmt: skip


def body_of(model: nn.Module, name: str) -> nn.Module:
    """The submodule ``name`` of ``model``.

    Raises:
        UsageError: There is none; the message lists the model's top-level submodules.
    """
    try:
        return model.get_submodule(name)
    except AttributeError as exc:
        children = [n for n, _ in model.named_children()]
        raise UsageError(
            f"the model has no submodule {name!r} to load the weights into and freeze",
            hint=f"pass --body with one of {children}",
        ) from exc


class FreezeBody(L.Callback):
    """Keeps ``body`` frozen while the recipe says so: no gradient, eval mode (BatchNorm statistics stay).

    Under ``linear`` the body never trains, so its parameters stop requiring gradients before the
    strategy wraps the model (DDP then leaves them out). Under ``lp-ft`` they keep requiring them
    (DDP must see them for the epochs after the unfreeze) and their gradients are dropped after
    each backward pass of the probe epochs, so the optimizer skips them.
    """

    def __init__(self, body: str, frozen_epochs: int | None) -> None:
        self.body = body
        self.frozen_epochs = frozen_epochs

    def _frozen(self, epoch: int) -> bool:
        return self.frozen_epochs is None or epoch < self.frozen_epochs

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if self.frozen_epochs is None:
            body_of(pl_module, self.body).requires_grad_(False)

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        # Per batch, not per epoch: Lightning sets train mode again after any validation.
        if self._frozen(trainer.current_epoch):
            body_of(pl_module, self.body).eval()

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.frozen_epochs is not None and self._frozen(trainer.current_epoch):
            for p in body_of(pl_module, self.body).parameters():
                p.grad = None


def use_recipe_optimizer(model: L.LightningModule, recipe: Recipe) -> None:
    """Make ``model`` train with the recipe's optimizer and schedule (unless it says ``module``).

    Raises:
        UsageError: An unknown optimizer or schedule name.
    """
    check_names(recipe, own_allowed=True)
    if recipe.optimizer == OWN_OPTIMIZER:
        return
    body_ids = {id(p) for p in body_of(model, recipe.body).parameters()}

    def configure_optimizers() -> Any:
        body = [p for p in model.parameters() if id(p) in body_ids]
        rest = [p for p in model.parameters() if id(p) not in body_ids]
        steps = int(model.trainer.estimated_stepping_batches)
        optimizer, scheduler = build_optimizer(recipe, body, rest, steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # Lightning looks the hook up on the instance, so this replaces the class's for this model only.
    model.configure_optimizers = configure_optimizers  # type: ignore[method-assign]


def pick_metric(metrics: Mapping[str, Any], wanted: str | None) -> str:
    """The metric compared: ``wanted``, else the first of :data:`METRIC_NAMES` the model logged.

    Raises:
        UsageError: It was not logged; the message lists what was.
    """
    if wanted is not None and wanted in metrics:
        return wanted
    if wanted is None:
        for name in METRIC_NAMES:
            if name in metrics:
                return name
    logged = sorted(metrics)
    raise UsageError(
        f"the model logged no validation metric {wanted!r}" if wanted else
        f"the model logged none of {list(METRIC_NAMES)}",
        hint=f"pass --metric with one of the metrics it logs: {logged}",
    )


def build_user_model(
    task: UserTask, model_cls: Callable[..., L.LightningModule], source: str | None, recipe: Recipe
) -> tuple[L.LightningModule, dict[str, Any] | None]:
    """Build the model and load ``source`` into its body (``None``: random init); the load report as a dict.

    The model is built the same way for every source (so the same seed gives every source the same
    head), then the weights are copied in with the public ``load_weights(..., into=body)``.
    """
    from weightport import load_weights

    model = model_cls(**dict(task.model_args))
    body_of(model, recipe.body)
    if source is None:
        return model, None
    return model, load_weights(model, source, into=recipe.body).to_dict()


def parameter_counts(model: nn.Module, recipe: Recipe) -> dict[str, int]:
    """Parameters in total, and those the protocol trains (all but the body under ``linear``)."""
    total = sum(p.numel() for p in model.parameters())
    body = sum(p.numel() for p in body_of(model, recipe.body).parameters())
    return {"params_total": total, "params_trainable": total - body if recipe.frozen_epochs() is None else total}


def first_batch_size(batch: Any) -> int:
    """Samples in a batch of any structure (Lightning's own rule)."""
    from lightning.pytorch.utilities.data import extract_batch_size

    return int(extract_batch_size(batch)) if not isinstance(batch, torch.Tensor) else int(batch.shape[0])
