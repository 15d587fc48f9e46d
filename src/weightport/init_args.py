"""A model class's init arguments: captured at construction, read from sources, checked on save.

``PretrainedMixin`` records the arguments every instance was built with (as huggingface_hub's
``PyTorchModelHubMixin`` does), so that ``save_pretrained`` can write them and ``from_pretrained``
rebuild the same model. Sources that carry an init configuration of their own (a ``save_pretrained``
directory's ``config.json``, a Lightning checkpoint's ``hyper_parameters``) give ``from_pretrained``
its defaults; explicit arguments override them, and the report says where each value came from.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.errors import SaveError
from weightport.loading.trained import SAVED_CONFIG, is_saved_model

if TYPE_CHECKING:
    from torch import nn

    from weightport.loading.options import LoadOptions
    from weightport.registry.resolve import SourceLike

#: Where an init argument's value came from, as the report says it.
FROM_ARGUMENT = "argument"
FROM_DEFAULT = "default"
FROM_SAVED_CONFIG = "config.json"
FROM_HPARAMS = "checkpoint hyper_parameters"


@dataclass(frozen=True)
class Captured:
    """The arguments an instance was built with, by parameter name (defaults filled in).

    Attributes:
        values: Parameter name → value, or ``None`` when they cannot be named (``*args`` used).
        problem: Why ``values`` is ``None``.
    """

    values: dict[str, Any] | None
    problem: str | None = None


@dataclass(frozen=True)
class InitSignature:
    """The named parameters of a class's ``__init__``."""

    names: tuple[str, ...]
    defaults: dict[str, Any] = field(default_factory=dict)
    var_keyword: bool = False
    var_positional: bool = False

    @classmethod
    def of(cls, owner: type) -> InitSignature:
        try:
            params = list(inspect.signature(owner.__init__).parameters.values())[1:]  # type: ignore[misc]
        except (TypeError, ValueError):
            return cls((), var_keyword=True, var_positional=True)
        named = [p for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        return cls(tuple(p.name for p in named),
                   {p.name: p.default for p in named if p.default is not p.empty},
                   any(p.kind is p.VAR_KEYWORD for p in params), any(p.kind is p.VAR_POSITIONAL for p in params))

    def accepts(self, name: str) -> bool:
        return name in self.names or self.var_keyword


def capture(owner: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Captured:
    """Name the arguments of ``owner(*args, **kwargs)``, with the defaults it did not get."""
    try:
        bound = inspect.signature(owner.__init__).bind(None, *args, **kwargs)  # type: ignore[misc]
    except (TypeError, ValueError) as exc:
        return Captured(None, f"the arguments do not fit {owner.__name__}.__init__ ({exc})")
    bound.apply_defaults()
    values: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        if i == 0:
            continue  # self
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            if value:
                return Captured(None, f"{owner.__name__}.__init__ was given *{name} positional arguments, "
                                "which a config cannot name")
        elif kind is inspect.Parameter.VAR_KEYWORD:
            values.update(value)
        else:
            values[name] = value
    return Captured(values)


def explicit_arguments(owner: type, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The arguments a caller gave, by name (positional ones named by ``owner.__init__``)."""
    try:
        bound = inspect.signature(owner.__init__).bind_partial(None, *args, **kwargs)  # type: ignore[misc]
    except (TypeError, ValueError):
        return dict(kwargs)
    out: dict[str, Any] = {}
    for i, (name, value) in enumerate(bound.arguments.items()):
        kind = bound.signature.parameters[name].kind
        if i == 0 or kind is inspect.Parameter.VAR_POSITIONAL:
            continue
        if kind is inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[name] = value
    return out


@dataclass(frozen=True)
class SourceConfig:
    """Init arguments a source carries, already restricted to what the class accepts."""

    values: dict[str, Any]
    origin: str
    ignored: tuple[str, ...] = ()


def source_config(owner: type, source: SourceLike, options: LoadOptions) -> SourceConfig | None:
    """The init configuration ``source`` carries for ``owner``, if any.

    A ``save_pretrained`` directory gives its ``config.json``; a Lightning checkpoint (``.ckpt``) its
    ``hyper_parameters`` — the entries that are parameters of ``owner.__init__`` (all of them when it
    takes ``**kwargs``), never values a safe load could not rebuild. The source is fetched through the
    cache (nothing is downloaded twice).
    """
    from weightport.loading.source_io import fetch_source

    path = fetch_source(source, options).fetched.path
    if path.is_dir() and is_saved_model(path):
        config = json.loads((path / SAVED_CONFIG).read_text())
        return _fitting(owner, config, FROM_SAVED_CONFIG) if isinstance(config, dict) else None
    if path.is_file() and path.suffix.lower() == ".ckpt":
        return _hparams_config(owner, path, options)
    return None


def _hparams_config(owner: type, path: Path, options: LoadOptions) -> SourceConfig | None:
    from weightport.loading.source_io import read_file

    raw = read_file(path, options.read_options())  # read once with the load (mixin: one_read_per_file)
    meta = raw.metadata or {}
    hparams = meta.get("hyper_parameters")
    if not isinstance(hparams, Mapping) or not hparams:
        return None
    hparams = _own_copy(hparams)
    name = meta.get("hparams_name")
    sig = InitSignature.of(owner)
    if isinstance(name, str) and name in sig.names and name not in hparams:
        return SourceConfig({name: dict(hparams)}, FROM_HPARAMS)  # __init__ takes one hparams object
    return _fitting(owner, dict(hparams), FROM_HPARAMS)


def _own_copy(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy for the user's ``__init__``, so that the checkpoint read once for the hyper-parameters
    and the load (and the report's metadata) keeps its values as read. Placeholders stay themselves."""
    from weightport.formats.safety import find_unresolved

    keep: dict[int, Any] = {id(stub): stub for _, stub in find_unresolved(hparams)}
    return copy.deepcopy(dict(hparams), keep)


def _fitting(owner: type, config: dict[str, Any], origin: str) -> SourceConfig | None:
    from weightport.formats.safety import UnresolvedObject

    sig = InitSignature.of(owner)
    values, ignored = {}, []
    for key, value in config.items():
        if key.startswith("_") or not sig.accepts(key) or _holds(value, UnresolvedObject):
            ignored.append(key)
        else:
            values[key] = value
    return SourceConfig(values, origin, tuple(ignored)) if values else None


def _holds(value: Any, kind: type) -> bool:
    if isinstance(value, kind) or (isinstance(value, type) and issubclass(value, kind)):
        return True
    if isinstance(value, Mapping):
        return any(_holds(v, kind) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds(v, kind) for v in value)
    return False


def provenance(owner: type, explicit: dict[str, Any], config: SourceConfig | None,
               used: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """For the report: every init argument of the built model, its value and where it came from."""
    from weightport.registry.source import jsonable

    sig = InitSignature.of(owner)
    out: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys([*sig.names, *used]):
        if name in explicit:
            origin = FROM_ARGUMENT
        elif config is not None and name in config.values:
            origin = config.origin
        elif name in sig.defaults:
            origin = FROM_DEFAULT
        else:
            continue
        out[name] = {"value": jsonable(used.get(name, sig.defaults.get(name))), "from": origin}
    return out


def checked_config(model: nn.Module, config: dict[str, Any]) -> str:
    """``config`` as JSON, after proving that ``type(model)(**config)`` rebuilds ``model``'s weights.

    Raises:
        SaveError: A value JSON cannot hold, or a rebuilt model whose weights differ in name or shape
            (a layer replaced after construction, arguments that were never recorded).
    """
    owner = type(model).__name__
    bad = [k for k, v in config.items() if not _json_safe(v)]
    if bad:
        raise SaveError(
            f"{owner} cannot be rebuilt from a config.json: init argument(s) {', '.join(bad)} hold "
            + ", ".join(type(config[k]).__name__ for k in bad) + ", which JSON cannot hold",
            hint="use JSON-friendly init arguments (numbers, strings, lists, dicts) such as a name to build the "
            "object from, or save the state_dict yourself",
        )
    difference = _rebuild_difference(model, config)
    if difference:
        raise SaveError(
            f"{owner}(**config) with the recorded init arguments {config} would not rebuild this model: {difference}",
            hint=f"build the model with the arguments that make its layers ({owner}(...)), rather than changing "
            "layers after construction, so that from_pretrained can rebuild it",
        )
    return json.dumps(config, indent=2)


def _json_safe(value: Any) -> bool:
    try:
        return json.loads(json.dumps(value)) == value
    except (TypeError, ValueError):
        return False


def _rebuild_difference(model: nn.Module, config: dict[str, Any]) -> str | None:
    """What differs between ``model``'s weights and a fresh build from ``config`` (built on meta)."""
    import torch

    from weightport.hooks import configure_model

    def build() -> nn.Module:
        fresh = type(model)(**config)
        configure_model(fresh)
        return fresh

    from weightport.loading.meta_init import skip_meta_init

    try:
        with torch.device("meta"), skip_meta_init():  # shapes only: no initialisation
            fresh = build()
    except Exception:  # a constructor that needs real values: build it for real
        try:
            fresh = build()
        except Exception as exc:  # it rejects its own config
            return f"the constructor failed ({type(exc).__name__}: {exc})"
    mine = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
    diffs = [f"{k}: {mine[k]} saved, {theirs[k]} rebuilt" for k in mine if k in theirs and mine[k] != theirs[k]]
    diffs += [f"{k} is not in the rebuilt model" for k in mine if k not in theirs]
    diffs += [f"{k} is only in the rebuilt model" for k in theirs if k not in mine]
    if not diffs:
        return None
    return "; ".join(diffs[:4]) + (f"; … ({len(diffs) - 4} more)" if len(diffs) > 4 else "")
