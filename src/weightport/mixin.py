"""``PretrainedMixin``: ``Model.from_pretrained(source, ...)`` for any LightningModule or ``nn.Module``.

The mixin is a template method: :meth:`PretrainedMixin.from_pretrained` builds the model and loads
the weights through the loading pipeline; everything it stores on the instance is namespaced
``weightport_*`` so it never collides with a user's attributes. It follows Lightning's conventions:
``configure_model()`` runs before loading, ``strict_loading`` sets ``strict`` when the call does not,
and in a Trainer run the load is logged at rank zero and kept with the run (see :mod:`weightport.hooks`).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import functools
import inspect
import json
import time
import weakref
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from weightport import hooks
from weightport.errors import UsageError
from weightport.init_args import (
    Captured,
    InitSignature,
    capture,
    checked_config,
    explicit_arguments,
    provenance,
    source_config,
)
from weightport.loading.options import NAMED_OPTIONS, LoadOptions, not_an_option, option_parameters
from weightport.loading.trained import SAVED_CONFIG, SAVED_PROVENANCE, warn_replaced
from weightport.registry.resolve import SourceLike

if TYPE_CHECKING:
    from weightport.report import LoadReport

T = TypeVar("T", bound="PretrainedMixin")

CONFIG_FILE = SAVED_CONFIG
WEIGHTS_FILE = "model.safetensors"
PROVENANCE_FILE = SAVED_PROVENANCE
CHECKPOINT_KEY = "weightport"
LOAD_OPTIONS = "load_options"

#: Set while ``load_from_checkpoint`` rebuilds a model: the checkpoint holds every weight, so a
#: ``load_pretrained`` inside ``configure_model`` fetches and loads nothing.
_restoring: contextvars.ContextVar[bool] = contextvars.ContextVar("weightport_restoring", default=False)


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

        call.__signature__ = _from_pretrained_signature(owner)  # type: ignore[attr-defined]
        call.__annotations__ = {**getattr(func, "__annotations__", {}), "return": owner}
        return call


def _source_parameter() -> inspect.Parameter:
    return inspect.Parameter("source", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=SourceLike)


def _load_options_parameter() -> inspect.Parameter:
    return inspect.Parameter(LOAD_OPTIONS, inspect.Parameter.KEYWORD_ONLY, default=None,
                             annotation=LoadOptions | Mapping[str, Any] | None)


#: Each class's ``from_pretrained`` signature, made on the first lookup (every call looks it up).
_SIGNATURES: weakref.WeakKeyDictionary[type, inspect.Signature] = weakref.WeakKeyDictionary()


def _from_pretrained_signature(owner: type) -> inspect.Signature:
    """``(source, *, <init parameters>, <named options>, load_options=None, **init_kwargs)``."""
    sig = _SIGNATURES.get(owner)
    if sig is None:
        sig = _SIGNATURES[owner] = _make_signature(owner)
    return sig


def _make_signature(owner: type) -> inspect.Signature:
    try:
        init = list(inspect.signature(owner.__init__).parameters.values())[1:]  # type: ignore[misc]
    except (TypeError, ValueError):
        init = []
    taken = {"source", LOAD_OPTIONS, *NAMED_OPTIONS}
    init_params = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY) if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD else p
        for p in init
        if p.name not in taken and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY)
    ]
    var_kw = [p for p in init_params if p.kind is inspect.Parameter.VAR_KEYWORD]
    keyword = [p for p in init_params if p.kind is not inspect.Parameter.VAR_KEYWORD]
    params = [_source_parameter(), *keyword, *option_parameters(NAMED_OPTIONS), _load_options_parameter(), *var_kw]
    return inspect.Signature(params, return_annotation=owner)


def _split_keywords(owner: type, kwargs: dict[str, Any]) -> tuple[LoadOptions, set[str], dict[str, Any]]:
    """``from_pretrained``'s keywords as (options, the option names given, init keyword arguments).

    Raises:
        InvalidOptionError: A keyword that is neither an option nor an init argument (``stirct``).
    """
    named = {k: kwargs[k] for k in NAMED_OPTIONS if k in kwargs}
    load_options = kwargs.get(LOAD_OPTIONS)
    init = {k: v for k, v in kwargs.items() if k not in named and k != LOAD_OPTIONS}
    sig = InitSignature.of(owner)
    for name in init:
        if name in sig.names:
            continue
        near_option = difflib.get_close_matches(name, NAMED_OPTIONS, n=1, cutoff=0.8)
        if sig.var_keyword and not near_option:
            continue
        if name in LoadOptions.names():
            raise not_an_option(name, [], also=" that from_pretrained takes by name",
                                hint=f"write load_options={{{name!r}: {init[name]!r}}}")
        raise not_an_option(name, [*NAMED_OPTIONS, *sig.names],
                            also=f" nor an argument of {owner.__name__}.__init__")
    options = LoadOptions.build(load_options, **named)
    given = set(named) | (set(load_options.given() if isinstance(load_options, LoadOptions) else load_options or {}))
    return options, given, init


class PretrainedMixin:
    """Adds ``from_pretrained`` / ``load_pretrained`` / ``save_pretrained`` to a model class.

    Put it first among the bases::

        class Classifier(PretrainedMixin, L.LightningModule):
            def __init__(self, num_classes: int = 10):
                super().__init__()
                self.backbone = torchvision.models.resnet18()
                self.backbone.fc = nn.Identity()
                self.head = nn.Linear(512, num_classes)

        model = Classifier.from_pretrained("path/to/resnet18.pth", num_classes=5)
        print(model.weightport_report)

    The init arguments of every instance are recorded when it is built, so ``save_pretrained``
    writes what ``from_pretrained`` needs to rebuild it. In a Lightning checkpoint, the mixin stores
    the weights' provenance under ``"weightport"``; ``load_from_checkpoint`` restores it and never
    fetches the pretrained weights again. Subclasses overriding ``on_fit_start``,
    ``on_save_checkpoint`` or ``on_load_checkpoint`` call ``super()``.
    """

    weightport_report: LoadReport | None = None

    @property
    def weightport_provenance(self) -> dict[str, Any] | None:
        """The pretrained weights' provenance (source, sha256, counts, coverage), or None before a load.

        Made from ``weightport_report`` when first read (saving a checkpoint, ``save_pretrained``),
        not during the load: its sha256 of an unpinned local file is hashed then, if the file is
        still the one that was loaded (SECURITY.md, *When files are hashed*). A Lightning checkpoint's
        provenance, restored by ``on_load_checkpoint``, is kept as it was saved.
        """
        kept: dict[str, Any] | None = self.__dict__.get("_weightport_provenance")
        if kept is None and self.weightport_report is not None:
            kept = self.weightport_report.summary()
            self.__dict__["_weightport_provenance"] = kept
        return kept

    @weightport_provenance.setter
    def weightport_provenance(self, value: dict[str, Any] | None) -> None:
        self.__dict__["_weightport_provenance"] = value

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        instance = super().__new__(cls)
        object.__setattr__(instance, "_weightport_init", capture(cls, args, kwargs))
        return instance

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("configure_model")
        if callable(own) and not getattr(own, "_weightport_wrapped", False):
            cls.configure_model = _marking_configure(own)  # type: ignore[attr-defined]

    @_class_only
    def from_pretrained(cls: type[T], source: SourceLike, *args: Any, **kwargs: Any) -> T:
        """Build ``cls(*args, **kwargs)`` and load pretrained weights into it.

        Args:
            source: Where the weights are: a path, ``file:``/``hf:``/``torchvision:``/``timm:``/``pkg:``
                source string, URL, alias, or a directory written by :meth:`save_pretrained`.
            *args: Positional arguments for the class's ``__init__``.
            **kwargs: The named load options (``into``, ``strict``, ``rename``, ``include``,
                ``exclude``, ``reinit``: see :class:`~weightport.loading.options.LoadOptions`),
                ``load_options={...}`` for any other option, and the class's init arguments. A source
                that carries its own init configuration (a :meth:`save_pretrained` directory, a
                Lightning checkpoint's ``hyper_parameters``) gives the defaults; the arguments given
                here override them, and ``weightport_report.init`` says where each value came from.

        Returns:
            The new model, with ``model.weightport_report`` describing the load.

        Raises:
            InvalidOptionError: A keyword that is neither an option nor an init argument, or a value
                an option cannot take.
            UsageError: ``strict`` contradicts the class's ``strict_loading``.
        """
        from weightport.loading.api import build_and_load
        from weightport.loading.source_io import one_read_per_file

        options, given, init_kwargs = _split_keywords(cls, kwargs)
        explicit = explicit_arguments(cls, args, init_kwargs)
        with one_read_per_file():  # a checkpoint read for its hyper-parameters is not read again for the load
            started = time.perf_counter()
            config = source_config(cls, source, options)
            configured = time.perf_counter() - started
            from_source = {k: v for k, v in (config.values if config else {}).items() if k not in explicit}
            init_kwargs = {**from_source, **init_kwargs}

            def build() -> T:
                model = cls(*args, **init_kwargs)
                hooks.configure_model(model)
                return model

            model, report = build_and_load(  # type: ignore[type-var]
                build, source, options=options,
                adjust=lambda m, o: hooks.with_strict_loading(m, o, "strict" in given))
        # The source's own init arguments were read before the load's clock started (for a Lightning
        # checkpoint: the one read of the file, which the load then reused).
        report.timings["init_config"] = configured
        report.timings["total"] = report.timings.get("total", 0.0) + configured
        captured = getattr(model, "_weightport_init", Captured(None))
        report.init = provenance(cls, explicit, config, captured.values or {**explicit, **init_kwargs})
        if config is not None and config.ignored:
            report.notes.append(f"{config.origin}: not init arguments of {cls.__name__}, not used: "
                                + ", ".join(config.ignored))
        overridden = [k for k in explicit if config is None or config.values.get(k, explicit[k]) != explicit[k]]
        if not options.reinit and not (overridden if config is not None else explicit):
            warn_replaced(report, advice=f"build it with the checkpoint's shapes ({cls.__name__}(...) arguments) "
                          "to keep them, or pass reinit=[...] to say it is on purpose")
        model._weightport_record(report)
        return model

    def load_pretrained(self, source: SourceLike, **options: Any) -> LoadReport:
        """Load pretrained weights into this instance.

        Takes every :class:`~weightport.loading.options.LoadOptions` option by name (and
        ``load_options={...}``). Without ``strict``, a LightningModule's ``strict_loading`` decides.

        Inside ``configure_model`` — where Lightning builds large models in a Trainer run — it loads
        once per instance: Lightning calls the hook again for every ``fit``/``validate``/``test``, and
        a later call with the same source keeps the weights (trained since) and returns the first
        report; under ``load_from_checkpoint`` it loads nothing (the checkpoint holds every weight).

        Returns:
            The report, also kept as ``self.weightport_report``.
        """
        from weightport.loading.api import load_weights

        load_options = options.pop(LOAD_OPTIONS, None)
        opts = LoadOptions.build(load_options, **options)
        given = set(options) | set(load_options.given() if isinstance(load_options, LoadOptions)
                                   else load_options or {})
        key = (str(source), opts.into)
        done: dict[Any, LoadReport] = self.__dict__.setdefault("_weightport_loaded", {})
        if _configuring.get() is self and key in done:
            return done[key]
        if _configuring.get() is self and _restoring.get():
            # A model built on meta in configure_model gets memory (and its normal initialisation) for
            # the checkpoint's state dict to be copied into: Lightning copies, a copy into meta is a no-op.
            from weightport.loading.fast import materialise

            materialise(self)  # type: ignore[arg-type]
            return self.weightport_report  # type: ignore[return-value]
        opts = hooks.with_strict_loading(self, opts, "strict" in given)
        report = load_weights(self, source, options=opts)  # type: ignore[arg-type]
        done[key] = report
        self._weightport_record(report)
        return report

    def _weightport_record(self, report: LoadReport) -> None:
        self.weightport_report = report
        self.weightport_provenance = None  # made from the report when read: no hashing during the load

    def save_pretrained(self, directory: str | Path) -> Path:
        """Write ``model.safetensors``, the init arguments as ``config.json`` and the provenance.

        ``Model.from_pretrained(directory)`` rebuilds the same model from it: the init arguments are
        those the instance was built with (or its ``hparams`` when they cannot be named), and the
        save is refused unless a model built from them has the same weights, by name and shape.

        Raises:
            SaveError: The model cannot be rebuilt from what would be saved (an argument JSON cannot
                hold, a layer changed after construction, arguments that were never recorded).
        """
        from weightport.formats.safetensors_writer import write_safetensors

        config_text = checked_config(self, self._weightport_config())  # type: ignore[arg-type]
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        write_safetensors(self.state_dict(), directory / WEIGHTS_FILE)  # type: ignore[attr-defined]
        (directory / CONFIG_FILE).write_text(config_text)
        provenance = {"class": f"{type(self).__module__}:{type(self).__qualname__}",
                      "pretrained": self.weightport_provenance}
        (directory / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=2, default=str))
        return directory

    def _weightport_config(self) -> dict[str, Any]:
        captured: Captured = getattr(self, "_weightport_init", Captured(None, "the arguments were not recorded"))
        if captured.values is not None:
            return dict(captured.values)
        hparams = getattr(self, "hparams", None)
        if isinstance(hparams, Mapping) and hparams:
            return dict(hparams)
        from weightport.errors import SaveError

        raise SaveError(
            f"{type(self).__name__} cannot be saved so that from_pretrained rebuilds it: {captured.problem}",
            hint="give __init__ named arguments, or call self.save_hyperparameters() in __init__",
        )

    @classmethod
    def load_from_checkpoint(cls, *args: Any, **kwargs: Any) -> Any:
        """Lightning's ``load_from_checkpoint``; a ``load_pretrained`` in ``configure_model`` fetches nothing."""
        parent = getattr(super(), "load_from_checkpoint", None)
        if parent is None:
            raise UsageError(f"{cls.__name__} is not a LightningModule; it has no load_from_checkpoint",
                             hint=f"use {cls.__name__}.from_pretrained(path)")
        token = _restoring.set(True)
        try:
            return parent(*args, **kwargs)
        finally:
            _restoring.reset(token)

    # Lightning hooks. Subclasses overriding them call super().
    def on_fit_start(self) -> None:
        """Log what was loaded (rank zero) and keep the report with the run's loggers."""
        report = self.weightport_report
        trainer = getattr(self, "_trainer", None)
        if report is not None and trainer is not None:
            hooks.report_to_trainer(self, report)  # type: ignore[arg-type]
            frozen = hooks.frozen_reinitialised(self, report, trainer)  # type: ignore[arg-type]
            if frozen:
                from weightport.keys import fold_keys
                from weightport.warnings import FrozenHeadWarning, warn

                warn(f"the re-initialised {', '.join(fold_keys(frozen, limit=4))} are frozen by a fine-tuning "
                     "callback and will not train until it unfreezes them: hold the new head outside the frozen "
                     "module (self.head beside self.backbone, see the README)", FrozenHeadWarning)
        parent = getattr(super(), "on_fit_start", None)
        if callable(parent):
            parent()

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


#: The instance whose ``configure_model`` is running (``load_pretrained`` loads once inside it).
_configuring: contextvars.ContextVar[Any] = contextvars.ContextVar("weightport_configuring", default=None)


def _marking_configure(func: Any) -> Any:
    @functools.wraps(func)
    def configure_model(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _running_configure(self):
            return func(self, *args, **kwargs)

    configure_model._weightport_wrapped = True  # type: ignore[attr-defined]
    return configure_model


@contextlib.contextmanager
def _running_configure(module: Any) -> Iterator[None]:
    token = _configuring.set(module)
    try:
        yield
    finally:
        _configuring.reset(token)


def _load_pretrained_signature() -> inspect.Signature:
    return inspect.Signature([
        inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD), _source_parameter(),
        *option_parameters(NAMED_OPTIONS), _load_options_parameter(),
        inspect.Parameter("options", inspect.Parameter.VAR_KEYWORD, annotation=Any),
    ])


PretrainedMixin.load_pretrained.__signature__ = _load_pretrained_signature()  # type: ignore[attr-defined]
