"""Every option a load takes, in one frozen record."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from weightport.errors import UsageError
from weightport.fetch.types import FetchOptions
from weightport.layout.rename import RenameRules

MatchMode = Literal["auto", "exact", "structural"]

#: Option names renamed in 0.2 (tensor adapters are now "fitters"); accepted, with a DeprecationWarning,
#: until 0.3.
DEPRECATED_NAMES: dict[str, str] = {"adapters": "fitters", "adapter_options": "fitter_options"}


@dataclass(frozen=True)
class LoadOptions:
    """How to load a checkpoint into a module.

    Attributes:
        into: The target submodule the checkpoint belongs to (``"backbone"``); found by key overlap
            when not given.
        strict: Every target parameter and persistent buffer must be loaded or re-initialised on
            purpose; with ``False``, what matches is loaded and the rest is reported.
        rename: ``{regex: replacement}`` rules applied to checkpoint keys, or a JSON file of them
            (``LoadPlan.save_rules`` writes one).
        include: Glob patterns (or module paths): load only tensors whose source or target key matches.
        exclude: Glob patterns (or module paths): never load tensors whose source or target key matches.
        reinit: Target keys or modules to re-initialise on purpose (default: the classification
            head, and only when its shape differs or the checkpoint lacks it).
        ema: ``True`` loads a checkpoint's EMA weights, ``False`` never, ``None`` only when there
            are no others.
        match: ``"auto"`` aligns leftover tensors by structure when names do not match, ``"exact"``
            never does, ``"structural"`` aligns every tensor by structure.
        fitters: Turn fitters on or off by name (``{"channels": False}``).
        fitter_options: Options for the fitters, e.g. ``{"grid": (14, 14), "num_prefix_tokens": 1}``
            for position embeddings.
        classes: Class names to keep from the source's head, in order (needs a source that knows them).
        check_finite: Refuse NaN or infinite weights.
        lossy_cast: What to do when a cast loses precision (fp32 checkpoint into a bf16 model):
            ``"warn"``, ``"allow"`` or ``"error"``.
        min_coverage: Fail when less than this fraction of the model's parameters is loaded.
        allow_globals: Extra ``"module.Class"`` globals a pickle may hold (classes you trust).
        fetch: Cache, offline and timeout options for fetching the source.
        fast: When building a model (``from_pretrained``), build it on the meta device and place the
            checkpoint's memory-mapped tensors without a copy; ``False`` builds normally and copies.
        convert_cache: Store the loaded tensors once as safetensors in the model's key layout
            (``<cache>/converted/``) and use that file for later loads of the same source into the same
            layout: no mapping, no pickle read, a straight memory map (see :mod:`weightport.loading.conversion`).
        verify: After loading, run the source's own architecture (``True``: derived from a
            ``torchvision:``/``timm:`` source; or a function building it) and the model on one input,
            and fail when outputs differ by more than ``verify_tolerance`` (see :mod:`weightport.loading.equivalence`).
            ``"auto"`` (the default) verifies a load that mapped another implementation's layout
            (structural alignment, a layout rule, a timm filter) whenever the source architecture is
            known: a ``torchvision:``/``timm:`` source, or a checkpoint whose key layout is a known
            architecture's (:mod:`weightport.layout.known`). ``False`` never verifies.
        verify_tolerance: Largest allowed absolute output difference (default scales with the output).
        verify_input_shape: Input shape for verification (default from the source's input size).
    """

    into: str | None = None
    strict: bool = True
    rename: RenameRules | None = None
    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] | None = None
    reinit: tuple[str, ...] | None = None
    ema: bool | None = None
    match: MatchMode = "auto"
    fitters: Mapping[str, bool] = field(default_factory=dict)
    fitter_options: Mapping[str, Any] = field(default_factory=dict)
    classes: tuple[str, ...] | None = None
    check_finite: bool = True
    lossy_cast: Literal["warn", "allow", "error"] = "warn"
    min_coverage: float | None = None
    allow_globals: tuple[str, ...] = ()
    fetch: FetchOptions = field(default_factory=FetchOptions)
    fast: bool = True
    convert_cache: bool = False
    verify: bool | Literal["auto"] | Callable[[], Any] = "auto"
    verify_tolerance: float | None = None
    verify_input_shape: tuple[int, ...] | None = None

    @classmethod
    def build(cls, options: LoadOptions | Mapping[str, Any] | None = None, **kwargs: Any) -> LoadOptions:
        """Options from a record or mapping, with keyword overrides; unknown names are an error."""
        base: dict[str, Any] = {}
        if isinstance(options, LoadOptions):
            base = {f.name: getattr(options, f.name) for f in dataclasses.fields(cls)}
        elif options is not None:
            base = dict(options)
        base.update({k: v for k, v in kwargs.items()})
        base = _renamed(base)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(base) - known)
        if unknown:
            raise UsageError(
                f"unknown load option(s): {', '.join(unknown)}",
                hint="known options: " + ", ".join(sorted(known)),
            )
        for name in ("include", "exclude", "reinit", "classes", "allow_globals"):
            value = base.get(name)
            if isinstance(value, str):
                base[name] = (value,)
            elif isinstance(value, Sequence):
                base[name] = tuple(value)
        if isinstance(base.get("verify_input_shape"), Sequence):
            base["verify_input_shape"] = tuple(base["verify_input_shape"])
        if isinstance(base.get("fetch"), Mapping):
            base["fetch"] = FetchOptions(**base["fetch"])
        if base.get("match", "auto") not in ("auto", "exact", "structural"):
            raise UsageError(f"match={base['match']!r} is not one of 'auto', 'exact', 'structural'")
        return cls(**base)

    @property
    def adapters(self) -> Mapping[str, bool]:
        """Deprecated name of :attr:`fitters`."""
        _warn_renamed("adapters")
        return self.fitters

    @property
    def adapter_options(self) -> Mapping[str, Any]:
        """Deprecated name of :attr:`fitter_options`."""
        _warn_renamed("adapter_options")
        return self.fitter_options


def _warn_renamed(old: str) -> None:
    warnings.warn(f"the load option {old!r} is now {DEPRECATED_NAMES[old]!r}; the old name goes in weightport 0.3",
                  DeprecationWarning, stacklevel=3)


def _renamed(base: dict[str, Any]) -> dict[str, Any]:
    """``base`` with deprecated option names replaced by their new ones (warning once each)."""
    for old, new in DEPRECATED_NAMES.items():
        if old in base:
            _warn_renamed(old)
            value = base.pop(old)
            if new in base and base[new] != value:
                raise UsageError(f"both {old!r} (deprecated) and {new!r} were given",
                                 hint=f"pass only {new}=...")
            base[new] = value
    return base
