"""Lightning's hooks and conventions, as the mixin follows them (``lightning`` and ``pytorch_lightning``).

- ``configure_model()``: Lightning calls it before loading a checkpoint (``load_from_checkpoint``) and
  at the start of every Trainer run; ``from_pretrained`` calls it too, before loading, when a class
  overrides it, so that layers built there receive the weights.
- ``strict_loading``: a LightningModule attribute that sets ``strict`` when the caller does not.
- In a Trainer run, the load's summary is logged once, at global rank zero, under the logger
  ``lightning.pytorch.weightport`` (``pytorch_lightning.weightport``), and the report goes to the
  Trainer's loggers: a few ``weightport/*`` hyper-parameters and ``weightport_report.json`` in the
  logger's directory.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.errors import UsageError
from weightport.loading.options import LoadOptions

if TYPE_CHECKING:
    from torch import nn

    from weightport.report import LoadReport

#: Where a Trainer run logs the load summary: a child of Lightning's own logger, so it shows with
#: Lightning's messages; ``logging.getLogger("lightning.pytorch.weightport").setLevel(logging.WARNING)``
#: silences it.
SUMMARY_LOGGER = "weightport"
REPORT_FILE = "weightport_report.json"

_LIGHTNING_PACKAGES = ("lightning.", "pytorch_lightning.")


def overrides(module: Any, name: str) -> bool:
    """Whether ``type(module)`` defines hook ``name`` itself, rather than inheriting Lightning's."""
    for klass in type(module).__mro__:
        if name in vars(klass):
            return not klass.__module__.startswith(_LIGHTNING_PACKAGES) and klass.__module__ != "weightport.mixin"
    return False


def configure_model(module: Any) -> bool:
    """Call ``module.configure_model()`` when its class overrides it (as ``load_from_checkpoint`` does).

    Returns:
        Whether it was called.
    """
    if not overrides(module, "configure_model"):
        return False
    module.configure_model()
    return True


def with_strict_loading(module: Any, options: LoadOptions, strict_given: bool) -> LoadOptions:
    """``options`` with ``strict`` taken from the module's ``strict_loading`` when the caller gave none.

    Raises:
        UsageError: ``strict`` was given and contradicts ``strict_loading`` set on the module (Lightning
            refuses the same conflict in ``load_from_checkpoint``).
    """
    own = getattr(module, "_strict_loading", None)  # LightningModule: None until the user sets it
    if own is None:
        return options
    if strict_given and bool(own) != options.strict:
        raise UsageError(
            f"strict={options.strict} conflicts with {type(module).__name__}.strict_loading={bool(own)}",
            hint="pass the same value for both, or leave strict out to use strict_loading",
        )
    return LoadOptions.build(options, strict=bool(own))


def lightning_logger(trainer: Any) -> logging.Logger:
    """The logger for messages in a Trainer run, under Lightning's own (so they show with its messages)."""
    package = "pytorch_lightning" if type(trainer).__module__.startswith("pytorch_lightning") else "lightning.pytorch"
    return logging.getLogger(f"{package}.{SUMMARY_LOGGER}")


def report_to_trainer(module: nn.Module, report: LoadReport) -> None:
    """Log the summary at global rank zero and hand the report to the Trainer's loggers."""
    trainer = getattr(module, "_trainer", None)
    if trainer is None:
        return
    if getattr(trainer, "is_global_zero", True):
        lightning_logger(trainer).info("%s", report)
    flat = {f"weightport/{k}": v for k, v in hparams_of(report).items()}
    for logger in getattr(trainer, "loggers", []) or []:
        logger.log_hyperparams(flat)
        directory = getattr(logger, "log_dir", None)
        if directory and getattr(trainer, "is_global_zero", True):
            Path(directory).mkdir(parents=True, exist_ok=True)
            (Path(directory) / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2, default=str))


def hparams_of(report: LoadReport) -> dict[str, Any]:
    """The few facts of a load worth keeping beside a run's hyper-parameters."""
    counts = report.counts()
    return {"source": report.source.uri, "sha256": report.source.sha256 or "", "into": report.into or "",
            "coverage": round(report.coverage, 6), "loaded": counts["loaded"],
            "reinitialized": counts["reinitialized"], "missing": counts["missing"], "unexpected": counts["unexpected"]}


def frozen_reinitialised(module: nn.Module, report: LoadReport, trainer: Any) -> list[str]:
    """Re-initialised parameters that a fine-tuning callback (``BackboneFinetuning``) has frozen."""
    callbacks = getattr(trainer, "callbacks", []) or []
    if not any(type(c).__name__ in ("BackboneFinetuning", "BaseFinetuning") or
               any(k.__name__ == "BaseFinetuning" for k in type(c).__mro__) for c in callbacks):
        return []
    params = dict(module.named_parameters())
    return [r.key for r in report.reinitialized if r.key in params and not params[r.key].requires_grad]
