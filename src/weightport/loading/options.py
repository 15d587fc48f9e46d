"""Every option a load takes, in one frozen record."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import typing
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from weightport.errors import InvalidOptionError, UsageError
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
        check_finite: Also read every value of the checkpoint and refuse NaN or infinite ones (one
            pass over the weights; off by default, as it costs about as much as the rest of a warm
            load: SECURITY.md §6, README *Loading speed and memory*). A finite value that a cast
            into the model's dtype would make infinite is refused either way.
        lossy_cast: What to do when a cast loses precision (fp32 checkpoint into a bf16 model):
            ``"warn"``, ``"allow"`` or ``"error"``.
        min_coverage: Fail when less than this fraction of the model's parameters is loaded.
        allow_globals: Extra ``"module.Class"`` globals a pickle may hold (classes you trust).
        fetch: Cache, offline and timeout options for fetching the source.
        read_limits: Raise the reader's resource limits for a file you trust, by
            :class:`~weightport.formats.ReadOptions` name (``max_tensor_bytes``, ``max_expansion``,
            ``max_header_bytes``, ``max_depth``, ``max_objects``).
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
    check_finite: bool = False
    lossy_cast: Literal["warn", "allow", "error"] = "warn"
    min_coverage: float | None = None
    allow_globals: tuple[str, ...] = ()
    fetch: FetchOptions = field(default_factory=FetchOptions)
    read_limits: Mapping[str, Any] = field(default_factory=dict)
    fast: bool = True
    convert_cache: bool = False
    verify: bool | Literal["auto"] | Callable[[], Any] = "auto"
    verify_tolerance: float | None = None
    verify_input_shape: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def names(cls) -> list[str]:
        """Every option's name."""
        return [f.name for f in dataclasses.fields(cls)]

    def given(self) -> dict[str, Any]:
        """The options that differ from their defaults."""
        default = LoadOptions()
        return {name: getattr(self, name) for name in self.names() if getattr(self, name) != getattr(default, name)}

    @classmethod
    def build(cls, options: LoadOptions | Mapping[str, Any] | None = None, **kwargs: Any) -> LoadOptions:
        """Options from a record or mapping, with keyword overrides; unknown names are an error.

        Raises:
            InvalidOptionError: A name that is not an option (the message suggests the close one), or
                a value the option cannot take.
        """
        base: dict[str, Any] = {}
        if isinstance(options, LoadOptions):
            base = {f.name: getattr(options, f.name) for f in dataclasses.fields(cls)}
        elif isinstance(options, Mapping):
            base = dict(options)
        elif options is not None:
            raise InvalidOptionError(f"load options must be a LoadOptions or a mapping, got {type(options).__name__}")
        base.update({k: v for k, v in kwargs.items()})
        base = _renamed(base)
        unknown = sorted(set(base) - set(cls.names()))
        if unknown:
            raise not_an_option(unknown[0], cls.names())
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
        return cls(**base)

    def read_options(self) -> Any:
        """The :class:`~weightport.formats.ReadOptions` a load reads its checkpoint with.

        Raises:
            InvalidOptionError: ``read_limits`` names something that is not a limit.
        """
        from weightport.formats import ReadOptions

        allowed = ("max_tensor_bytes", "max_expansion", "max_header_bytes", "max_depth", "max_objects")
        unknown = sorted(set(self.read_limits) - set(allowed))
        if unknown:
            raise not_an_option(unknown[0], allowed)
        return ReadOptions(mmap=True, allow_globals=self.allow_globals, **dict(self.read_limits))

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


#: The options ``PretrainedMixin.from_pretrained`` takes by name, beside the model's init arguments;
#: every other option goes in ``load_options={...}`` (``load_pretrained`` takes them all by name).
NAMED_OPTIONS: tuple[str, ...] = ("into", "strict", "rename", "include", "exclude", "reinit")


def option_parameters(names: Sequence[str]) -> list[inspect.Parameter]:
    """Keyword-only parameters for the options ``names``, typed and defaulted as :class:`LoadOptions`
    declares them (the one definition every signature that takes options is built from)."""
    hints = typing.get_type_hints(LoadOptions)
    defaults = {f.name: f.default for f in dataclasses.fields(LoadOptions)}
    return [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=defaults[name],
                              annotation=_accepting_lists(hints[name])) for name in names]


def _accepting_lists(annotation: Any) -> Any:
    # Patterns are stored as tuples but given as lists (and as YAML lists under LightningCLI).
    return Sequence[str] | None if annotation == (tuple[str, ...] | None) else annotation


def not_an_option(name: str, known: Sequence[str], *, also: str = "", hint: str | None = None) -> InvalidOptionError:
    """The error for a keyword that is no option: the close names, or the list of them (or ``hint``)."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.6)
    return InvalidOptionError(
        f"{name!r} is not a weightport option{also}" + (f"; did you mean {' or '.join(map(repr, close))}?" if close
                                                        else ""),
        hint=hint or (f"write {close[0]}=..." if close else "the options are: " + ", ".join(sorted(known))),
    )


_CHOICES: dict[str, tuple[Any, ...]] = {
    "match": ("auto", "exact", "structural"),
    "lossy_cast": ("warn", "allow", "error"),
}
_BOOLS = ("strict", "check_finite", "fast", "convert_cache")
_OPTIONAL_BOOLS = ("ema",)
_KEY_LISTS = ("include", "exclude", "reinit", "classes", "allow_globals")


def _validate(options: LoadOptions) -> None:
    """Refuse, at the call, a value an option cannot take (``strict="no"`` would read as true)."""
    for name, choices in _CHOICES.items():
        value = getattr(options, name)
        if value not in choices:
            raise _bad(name, value, "one of " + ", ".join(map(repr, choices)))
    for name in _BOOLS:
        if not isinstance(getattr(options, name), bool):
            raise _bad(name, getattr(options, name), "True or False")
    for name in _OPTIONAL_BOOLS:
        if getattr(options, name) is not None and not isinstance(getattr(options, name), bool):
            raise _bad(name, getattr(options, name), "True, False or None")
    if options.into is not None and not isinstance(options.into, str):
        raise _bad("into", options.into, "a submodule path such as 'backbone', or None")
    for name in _KEY_LISTS:
        value = getattr(options, name)
        if value is not None and not (isinstance(value, tuple) and all(isinstance(v, str) for v in value)):
            raise _bad(name, value, "a list of key or module patterns (strings)")
    cov = options.min_coverage
    if cov is not None and (isinstance(cov, bool) or not isinstance(cov, (int, float)) or not 0 <= cov <= 1):
        raise _bad("min_coverage", cov, "a fraction between 0 and 1")
    if not (isinstance(options.verify, bool) or options.verify == "auto" or callable(options.verify)):
        raise _bad("verify", options.verify, "'auto', True, False or a function building the source architecture")
    if not isinstance(options.fitters, Mapping) or not all(isinstance(v, bool) for v in options.fitters.values()):
        raise _bad("fitters", options.fitters, "a mapping of fitter name to True/False")


def _bad(name: str, value: Any, expected: str) -> InvalidOptionError:
    return InvalidOptionError(f"{name}={value!r} is not a value {name} can take", hint=f"pass {expected}")
