"""``PretrainedMixin``: ``Model.from_pretrained(source, ...)`` for any LightningModule or ``nn.Module``.

The mixin is a template method: :meth:`PretrainedMixin.from_pretrained` builds the model and loads
the weights through :func:`weightport.load_weights`; everything it stores on the instance is
namespaced ``weightport_*`` so it never collides with a user's attributes.
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from weightport.errors import UsageError
from weightport.layout.rename import RenameRules
from weightport.loading.options import LoadOptions
from weightport.registry.resolve import SourceLike

if TYPE_CHECKING:
    from weightport.report import LoadReport

T = TypeVar("T", bound="PretrainedMixin")

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = "weightport.json"
CHECKPOINT_KEY = "weightport"

_LOAD_PARAMS = ("into", "strict", "rename", "include", "exclude", "reinit", "load_options")


class _class_only(classmethod):
    """A classmethod that refuses to be called on an instance, and whose bound form has the owner
    class as its return annotation and the owner's ``__init__`` parameters in its signature (so that
    LightningCLI/jsonargparse can use ``class_path: pkg.Model.from_pretrained``)."""

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        func = self.__func__
        if instance is not None:
            @functools.wraps(func)
            def refuse(*args: Any, **kwargs: Any) -> Any:
                raise UsageError(
                    f"{type(instance).__name__}.{func.__name__}() is a classmethod and builds a new model; "
                    "calling it on an instance would throw the loaded weights away",
                    hint=f"call {type(instance).__name__}.{func.__name__}(...) on the class, or "
                    "instance.load_pretrained(source) to load into this instance",
                )

            return refuse
        assert owner is not None
        bound = super().__get__(None, owner)

        @functools.wraps(func)
        def call(*args: Any, **kwargs: Any) -> Any:
            return bound(*args, **kwargs)

        call.__signature__ = _signature_for(func, owner)  # type: ignore[attr-defined]
        call.__annotations__ = {**getattr(func, "__annotations__", {}), "return": owner}
        return call


def _signature_for(func: Any, owner: type) -> inspect.Signature:
    own = list(inspect.signature(func).parameters.values())[1:]  # drop cls
    source = [p for p in own if p.name == "source"]
    options = [p for p in own if p.name in _LOAD_PARAMS]
    try:
        init = list(inspect.signature(owner.__init__).parameters.values())[1:]  # type: ignore[misc]
    except (TypeError, ValueError):
        init = []
    names = {p.name for p in source + options}
    init_params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD else p
        for p in init
        if p.name not in names and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY)
    ]
    var_kw = [p for p in init_params if p.kind is inspect.Parameter.VAR_KEYWORD]
    keyword = [p for p in init_params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    keyword += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in options]
    params = [p.replace(kind=inspect.Parameter.POSITIONAL_OR_KEYWORD) for p in source] + keyword + var_kw
    return inspect.Signature(params, return_annotation=owner)


class PretrainedMixin:
    """Adds ``from_pretrained`` / ``load_pretrained`` / ``save_pretrained`` to a model class.

    Put it first among the bases::

        class Classifier(PretrainedMixin, L.LightningModule):
            def __init__(self, num_classes: int = 10):
                super().__init__()
                self.backbone = torchvision.models.resnet18(num_classes=num_classes)

        model = Classifier.from_pretrained("path/to/resnet18.pth", num_classes=5)
        print(model.weightport_report)

    In a Lightning checkpoint, the mixin stores the weights' provenance under ``"weightport"``;
    ``load_from_checkpoint`` restores it and never fetches the pretrained weights again (they are
    loaded by ``from_pretrained``, not in ``__init__``).
    """

    weightport_report: LoadReport | None = None
    weightport_provenance: dict[str, Any] | None = None

    @_class_only
    def from_pretrained(
        cls: type[T],
        source: SourceLike,
        *args: Any,
        into: str | None = None,
        strict: bool = True,
        rename: RenameRules | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        reinit: list[str] | None = None,
        load_options: LoadOptions | Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> T:
        """Build ``cls(*args, **kwargs)`` and load pretrained weights into it.

        Args:
            source: Where the weights are: a path, ``file:``/``hf:``/``torchvision:``/``timm:``/``pkg:``
                source string, URL, alias, or a directory written by :meth:`save_pretrained`.
            *args: Positional arguments for the class's ``__init__``.
            into: The submodule the weights belong to (found automatically when not given).
            strict: Every weight of the model must be loaded or re-initialised on purpose.
            rename: ``{regex: replacement}`` rules for checkpoint keys, or a JSON file of them.
            include: Load only these keys/modules (globs).
            exclude: Never load these keys/modules (globs).
            reinit: Keys/modules to re-initialise on purpose (default: the head, when it does not fit).
            load_options: Any further :class:`~weightport.loading.options.LoadOptions`.
            **kwargs: Keyword arguments for the class's ``__init__``. For a directory written by
                :meth:`save_pretrained`, they override the saved ``config.json``.

        Returns:
            The new model, with ``model.weightport_report`` describing the load.
        """
        from weightport.loading.api import build_and_load

        saved = _saved_config(source)
        if saved is not None:
            kwargs = {**saved, **kwargs}
        options = _merge_options(load_options, into, strict, rename, include, exclude, reinit)
        model, report = build_and_load(lambda: cls(*args, **kwargs), source, options=options)  # type: ignore[type-var]
        model._weightport_init = {"args": list(args), "kwargs": dict(kwargs)}  # type: ignore[attr-defined]
        model._weightport_record(report)
        return model

    def load_pretrained(
        self,
        source: SourceLike,
        *,
        into: str | None = None,
        strict: bool = True,
        rename: RenameRules | None = None,
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        reinit: list[str] | None = None,
        load_options: LoadOptions | Mapping[str, Any] | None = None,
    ) -> LoadReport:
        """Load pretrained weights into this instance; same options as :meth:`from_pretrained`.

        Returns:
            The report, also kept as ``self.weightport_report``.
        """
        from weightport.loading.api import load_weights

        options = _merge_options(load_options, into, strict, rename, include, exclude, reinit)
        report = load_weights(self, source, options=options)  # type: ignore[arg-type]
        self._weightport_record(report)
        return report

    def _weightport_record(self, report: LoadReport) -> None:
        self.weightport_report = report
        self.weightport_provenance = report.summary()

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors``, the init arguments as ``config.json`` and the provenance.

        ``Model.from_pretrained(directory)`` rebuilds the same model from it.

        Raises:
            UsageError: The init arguments cannot be written as JSON.
        """
        from weightport.formats.safetensors_writer import write_safetensors

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = self._weightport_config()
        try:
            config_text = json.dumps(config, indent=2)
        except TypeError as exc:
            raise UsageError(
                f"the init arguments of {type(self).__name__} cannot be written as JSON: {exc}",
                hint="use JSON-friendly init arguments (numbers, strings, lists, dicts)",
            ) from exc
        write_safetensors(self.state_dict(), directory / WEIGHTS_FILE)  # type: ignore[attr-defined]
        (directory / CONFIG_FILE).write_text(config_text)
        provenance = {"class": f"{type(self).__module__}:{type(self).__qualname__}",
                      "pretrained": self.weightport_provenance}
        (directory / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str))
        return directory

    def _weightport_config(self) -> dict[str, Any]:
        init = getattr(self, "_weightport_init", None)
        if init is not None and not init["args"]:
            return dict(init["kwargs"])
        hparams = getattr(self, "hparams", None)
        if isinstance(hparams, Mapping) and hparams:
            return dict(hparams)
        if init is not None:
            names = [p for p in inspect.signature(type(self).__init__).parameters][1:]
            return {**dict(zip(names, init["args"])), **init["kwargs"]}
        return {}

    # Lightning hooks: keep the provenance in checkpoints. Subclasses overriding them call super().
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Store the pretrained weights' provenance in a Lightning checkpoint."""
        if self.weightport_provenance is not None:
            checkpoint[CHECKPOINT_KEY] = self.weightport_provenance
        parent = getattr(super(), "on_save_checkpoint", None)
        if callable(parent):
            parent(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Restore the provenance from a Lightning checkpoint (nothing is fetched)."""
        if CHECKPOINT_KEY in checkpoint:
            self.weightport_provenance = checkpoint[CHECKPOINT_KEY]
        parent = getattr(super(), "on_load_checkpoint", None)
        if callable(parent):
            parent(checkpoint)


def _merge_options(load_options: LoadOptions | Mapping[str, Any] | None, into: str | None, strict: bool,
                   rename: RenameRules | None, include: list[str] | None, exclude: list[str] | None,
                   reinit: list[str] | None) -> LoadOptions:
    """The named arguments laid over ``load_options`` (a named argument left at its default does not override)."""
    explicit = {"into": into, "rename": rename, "include": include, "exclude": exclude, "reinit": reinit}
    overrides: dict[str, Any] = {k: v for k, v in explicit.items() if v is not None}
    if not strict:
        overrides["strict"] = False
    return LoadOptions.build(load_options, **overrides)


def _saved_config(source: SourceLike) -> dict[str, Any] | None:
    """The init arguments of a directory written by ``save_pretrained``, if ``source`` is one."""
    if not isinstance(source, (str, Path)):
        return None
    text = str(source)
    text = text[5:] if text.startswith("file:") else text
    directory = Path(text).expanduser()
    if not (directory.is_dir() and (directory / PROVENANCE_FILE).is_file() and (directory / CONFIG_FILE).is_file()):
        return None
    config = json.loads((directory / CONFIG_FILE).read_text())
    return config if isinstance(config, dict) else None

