"""The model the benchmark trains: a named backbone plus a fresh classifier head.

:class:`FineTuner` is an ordinary ``LightningModule`` with weightport's :class:`PretrainedMixin`,
so a weight source goes in with ``FineTuner.from_pretrained(source, arch=..., into="backbone")``.
The backbone is built without its classifier (its checkpoint head, trained for other classes, is
left unused and shows in the load report); ``self.head`` is always new.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.classification import MulticlassAccuracy

from weightport.errors import MissingDependencyError, UsageError
from weightport.mixin import PretrainedMixin
from weightport_bench.finetune.recipe import Recipe, build_optimizer, recipe_for

#: What a backbone builder returns: the body (images → pooled features), its feature width, and
#: the mean/std its library says it was trained with (``None`` when unknown).
Body = tuple[nn.Module, int, tuple[tuple[float, ...], tuple[float, ...]] | None]


def _timm_body(name: str) -> Body:
    import timm

    try:
        body = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as exc:  # timm's "Unknown model" error
        raise UsageError(f"timm has no architecture {name!r}", hint="see timm.list_models()") from exc
    cfg = getattr(body, "pretrained_cfg", None) or {}
    stats = (tuple(cfg["mean"]), tuple(cfg["std"])) if "mean" in cfg and "std" in cfg else None
    return body, int(body.num_features), stats  # type: ignore[arg-type]  # timm sets an int


def _torchvision_body(name: str) -> Body:
    import torchvision

    try:
        body = torchvision.models.get_model(name, weights=None)
    except ValueError as exc:
        raise UsageError(
            f"torchvision has no architecture {name!r}", hint="see torchvision.models.list_models()"
        ) from exc
    # torchvision names its classifier differently per family (fc, classifier, heads); the last
    # Linear layer is the one that maps features to ImageNet classes in all of them.
    last = [(n, m) for n, m in body.named_modules() if isinstance(m, nn.Linear)][-1]
    parent_name, _, child = last[0].rpartition(".")
    parent = body.get_submodule(parent_name) if parent_name else body
    setattr(parent, child, nn.Identity())
    return body, int(last[1].in_features), None


#: Libraries that can build a backbone by architecture name (``timm:resnet50``, ``torchvision:resnet18``).
BACKBONES: dict[str, Callable[[str], Body]] = {"timm": _timm_body, "torchvision": _torchvision_body}


def build_body(arch: str) -> Body:
    """The backbone ``arch`` names: ``library:name``, or a bare timm name.

    Raises:
        UsageError: An unknown library or architecture.
    """
    library, sep, name = arch.partition(":")
    if not sep:
        library, name = "timm", arch
    builder = BACKBONES.get(library)
    if builder is None:
        raise UsageError(f"unknown backbone library {library!r} in {arch!r}", hint=f"use one of {sorted(BACKBONES)}")
    try:
        return builder(name)
    except ImportError as exc:
        raise MissingDependencyError(f"building {arch!r} needs {library}", hint=f"pip install {library}") from exc


class FineTuner(PretrainedMixin, L.LightningModule):
    """Backbone + linear head, trained under one protocol's recipe.

    Args:
        arch: The backbone architecture (``tf_efficientnet_lite0``, ``timm:resnet10t``, ``torchvision:resnet18``).
        num_classes: Classes of the new head.
        recipe: How to train; a :class:`Recipe`, its dict, or ``None`` for the ``full`` default.
    """

    def __init__(
        self, arch: str = "tf_efficientnet_lite0", num_classes: int = 10, recipe: Recipe | dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        if isinstance(recipe, dict):
            recipe = Recipe(**recipe)
        self.recipe = recipe or recipe_for("full")
        self.save_hyperparameters({"arch": arch, "num_classes": num_classes, "recipe": self.recipe.to_dict()})
        self.backbone, features, self.arch_stats = build_body(arch)
        self.head = nn.Linear(features, num_classes)
        self.num_classes = num_classes
        self.top1: MulticlassAccuracy | None = None
        self.top5: MulticlassAccuracy | None = None
        self._body_frozen = False
        # A body that never trains (linear probe) is marked so: DDP then ignores it and the
        # trainable parameter count says what actually learns.
        if self.recipe.frozen_epochs() is None:
            self.backbone.requires_grad_(False)
            self._body_frozen = True

    def setup(self, stage: str) -> None:
        # Metrics are made here, not in __init__: from_pretrained may build the model on the meta
        # device, and torchmetrics keeps its state defaults outside the module's buffers, where no
        # loader can see them (they stayed on meta and FSDP failed to move them).
        if self.top1 is None:
            self.top1 = MulticlassAccuracy(num_classes=self.num_classes, top_k=1, average="micro")
            self.top5 = (
                MulticlassAccuracy(num_classes=self.num_classes, top_k=5, average="micro")
                if self.num_classes > 5
                else None
            )

    # --- protocol -------------------------------------------------------------------------------

    def body_frozen_at(self, epoch: int) -> bool:
        """Whether the body is frozen (eval mode, no gradient) during ``epoch``."""
        frozen = self.recipe.frozen_epochs()
        return frozen is None or epoch < frozen

    def train(self, mode: bool = True) -> FineTuner:
        # A frozen body keeps its BatchNorm statistics: it stays in eval mode whatever Lightning sets.
        super().train(mode)
        if mode and self._body_frozen:
            self.backbone.eval()
        return self

    def on_train_epoch_start(self) -> None:
        self._body_frozen = self.body_frozen_at(self.current_epoch)
        self.train(True)

    # --- steps ----------------------------------------------------------------------------------

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self._body_frozen and self.training:
            with torch.no_grad():
                features = self.backbone(images)
        else:
            features = self.backbone(images)
        return self.head(features)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        images, labels = batch
        loss = F.cross_entropy(self(images), labels, label_smoothing=self.recipe.label_smoothing)
        self.log("train_loss", loss, on_step=False, on_epoch=True, sync_dist=True, batch_size=len(labels))
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        images, labels = batch
        logits = self(images)
        self.log("val_loss", F.cross_entropy(logits, labels), sync_dist=True, batch_size=len(labels))
        # Summed over batches and ranks: equals the validation set size only when ranks are reduced.
        self.log("val_seen", float(len(labels)), reduce_fx="sum", sync_dist=True, batch_size=len(labels))
        # torchmetrics accumulates counts and reduces them across ranks at epoch end.
        if self.top1 is None:
            raise UsageError("FineTuner.validation_step ran before setup()", hint="run it through a Lightning Trainer")
        self.top1(logits, labels)
        self.log("val_top1", self.top1, batch_size=len(labels))
        if self.top5 is not None:
            self.top5(logits, labels)
            self.log("val_top5", self.top5, batch_size=len(labels))

    def configure_optimizers(self) -> Any:
        steps = int(self.trainer.estimated_stepping_batches)
        optimizer, scheduler = build_optimizer(self.recipe, self.backbone.parameters(), self.head.parameters(), steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # --- counts ---------------------------------------------------------------------------------

    def parameter_counts(self) -> dict[str, int]:
        """Parameters in total, and those the protocol trains (head, plus the body unless it stays frozen)."""
        total = sum(p.numel() for p in self.parameters())
        head = sum(p.numel() for p in self.head.parameters())
        body = sum(p.numel() for p in self.backbone.parameters())
        trainable = head if self.recipe.frozen_epochs() is None else head + body
        return {"params_total": total, "params_trainable": trainable}
