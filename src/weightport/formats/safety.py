"""Which pickle globals a checkpoint may use, and inert placeholders for the ones it may not.

Every pickle goes through torch's ``weights_only`` unpickler; weightport never calls an
unrestricted ``pickle.load`` / ``torch.load(weights_only=False)``, and never retries one. Which
globals a pickle may name is decided in one place, :func:`decide` (the rule, in order):

1. **Refused**: names in :data:`REFUSED_TORCH` — the part of torch's own allowlist that builds
   something other than a plain dense CPU tensor (sparse, quantized, nested, meta, device-side,
   wrapper subclasses, tensors with Python attributes) or allocates memory from an argument the
   file chooses (``builtins.bytearray(n)``, ``torch.FloatTensor(n)``, ``torch.Tensor(n)``). torch
   itself resolves its allowlist before any placeholder could stand in, so these are refused by
   name, before torch sees the file. Of the builtins only ``set`` and ``complex`` remain (torch's
   own; both are built from values the file already holds); every other builtin is refused by
   rule 5.
2. **torch**: the rest of torch's default allowlist (tensor rebuild functions, storage classes,
   dtypes, ``torch.Size``, ``collections.OrderedDict``, ``_codecs.encode``) and anything the user
   registered with ``torch.serialization.add_safe_globals`` themselves.
3. **allowlisted**: the small documented :data:`ALLOWLIST` (``argparse.Namespace``, numpy scalars
   and dtypes, the latter wrapped so that only small numeric ones can be built).
4. **user**: the classes a user names in ``ReadOptions.allow_globals``.
5. **refused**: function-like names and names from modules that only serve to run code
   (:data:`DENIED_MODULES`, which includes ``builtins``).
6. **placeholder**: any other class-like global becomes an :class:`UnresolvedObject` subclass
   registered under its name: the module is never imported, nothing of it runs; the placeholder only
   records its constructor arguments and state (or, with ``stub_unknown_classes=False``, refused).
"""

from __future__ import annotations

import contextlib
import importlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from weightport.errors import MissingDependencyError, UnsafeCheckpointError

#: Modules whose every name is refused: they exist to run code, spawn processes or touch the system.
DENIED_MODULES: frozenset[str] = frozenset(
    "os posix nt sys subprocess builtins __builtin__ shutil socket importlib runpy pickle _pickle marshal "
    "ctypes multiprocessing pty code codeop webbrowser types functools operator io pathlib tempfile "
    "signal threading asyncio inspect gc pdb bdb timeit platform sysconfig site shelve dbm glob fileinput "
    "torch._C torch.hub torch.jit torch.ops torch._ops torch.utils.cpp_extension torch.package "
    "numpy.ctypeslib numpy.testing".split()
)


#: numpy dtype kinds a pickled numpy scalar or dtype may have: bool, integers, floats, complex,
#: datetimes. Void, bytes, string and object dtypes can declare any size (``V536870912``) or hold
#: references, and no hyper-parameter needs them.
NUMPY_KINDS = frozenset("biufcmM")
_NUMPY_MAX_ITEMSIZE = 32


class RefusedInLoad(UnsafeCheckpointError):
    """Raised inside ``torch.load`` by a bounded stand-in; the reader re-raises it naming the file."""


def _refuse_numpy(what: str) -> RefusedInLoad:
    return RefusedInLoad(
        f"the pickle builds a numpy {what}; only small numeric numpy scalars and dtypes are read",
        hint="store hyper-parameters as plain numbers, or convert the file in a sandbox",
    )


def _checked_dtype(dtype: Any) -> Any:
    import numpy

    if (
        not isinstance(dtype, numpy.dtype)
        or dtype.kind not in NUMPY_KINDS
        or dtype.itemsize > _NUMPY_MAX_ITEMSIZE
        or dtype.fields is not None
        or dtype.subdtype is not None
    ):
        raise _refuse_numpy(f"dtype {getattr(dtype, 'str', type(dtype).__name__)!s}")
    return dtype


class _BoundedDtype:
    """Stands for ``numpy.dtype`` in a load: builds only small numeric dtypes."""

    def __call__(self, *args: Any) -> Any:
        import numpy

        if not args or not isinstance(args[0], str) or len(args[0]) > 8:
            raise _refuse_numpy(f"dtype from {args[0]!r:.40}" if args else "dtype from nothing")
        return _checked_dtype(numpy.dtype(*args[:3]))


class _BoundedScalar:
    """Stands for numpy's ``scalar`` in a load: its bytes must be exactly one element of a small
    numeric dtype (a forged dtype could otherwise make numpy allocate whatever it declares)."""

    def __call__(self, dtype: Any, data: Any = None, *rest: Any) -> Any:
        import numpy

        _checked_dtype(dtype)
        if rest or not isinstance(data, bytes) or len(data) != dtype.itemsize:
            raise _refuse_numpy(f"scalar of {dtype.str} from {len(data) if isinstance(data, bytes) else 'no'} bytes")
        core = getattr(numpy, "_core", None) or numpy.core
        return core.multiarray.scalar(dtype, data)


def _numpy_scalar() -> Any:
    return _BOUNDED_SCALAR


def _numpy_dtype() -> Any:
    return _BOUNDED_DTYPE


_BOUNDED_SCALAR = _BoundedScalar()
_BOUNDED_DTYPE = _BoundedDtype()


def _namespace() -> Any:
    import argparse

    return argparse.Namespace


#: The documented extra globals weightport resolves to real objects, by the name a pickle uses.
#: All are value types whose construction runs no user code.
ALLOWLIST: dict[str, Callable[[], Any]] = {
    "argparse.Namespace": _namespace,
    "numpy.core.multiarray.scalar": _numpy_scalar,
    "numpy._core.multiarray.scalar": _numpy_scalar,
    "numpy.dtype": _numpy_dtype,
}

#: Names in torch's own weights_only allowlist that weightport refuses (rule 1 of :func:`decide`),
#: with what each would build. Tensor classes (``torch.FloatTensor``...) are matched by
#: :data:`_TENSOR_CLASS`.
REFUSED_TORCH: dict[str, str] = {
    "builtins.bytearray": "a bytearray (bytearray(n) allocates n bytes the file never stores)",
    "torch._utils._rebuild_sparse_tensor": "a sparse tensor",
    "torch.serialization._get_layout": "a sparse tensor layout",
    "torch._utils._rebuild_qtensor": "a quantized tensor",
    "torch._utils._rebuild_nested_tensor": "a nested tensor",
    "torch._utils._rebuild_meta_tensor_no_storage": "a meta tensor (no data)",
    "torch._utils._rebuild_wrapper_subclass": "a tensor subclass",
    "torch._utils._rebuild_device_tensor_from_cpu_tensor": "a tensor on another device",
    "torch._utils._rebuild_device_tensor_from_numpy": "a tensor from a numpy array",
    "torch._tensor._rebuild_from_type_v2": "a tensor subclass or a tensor with Python attributes",
    "torch._utils._rebuild_parameter_with_state": "a parameter with Python attributes",
    "torch.per_tensor_affine": "a quantized tensor",
    "torch.per_tensor_symmetric": "a quantized tensor",
    "torch.per_channel_affine": "a quantized tensor",
    "torch.per_channel_symmetric": "a quantized tensor",
    "torch.per_channel_affine_float_qparams": "a quantized tensor",
}
#: Legacy tensor classes: calling one with an integer allocates that many elements.
_TENSOR_CLASS = re.compile(r"^torch\.(cuda\.)?(sparse\.)?[A-Za-z0-9]*Tensor$")
_TENSOR_KINDS = frozenset(
    {"a sparse tensor", "a sparse tensor layout", "a quantized tensor", "a nested tensor", "a meta tensor (no data)",
     "a tensor subclass", "a tensor on another device", "a tensor from a numpy array",
     "a tensor subclass or a tensor with Python attributes", "a parameter with Python attributes"}
)

_NUMPY_DTYPE_CLASS = re.compile(r"^numpy\.dtypes\.[A-Za-z0-9]+DType$")
# Serialises loads: torch's safe-globals set is process-wide, and two loads adding and removing
# the same entry concurrently would pull it from under each other.
LOAD_LOCK = threading.RLock()


class UnresolvedObject:
    """Placeholder for an object of a class weightport does not import.

    Each stubbed class gets its own subclass whose ``qualname`` is the pickle's ``module.Name``.

    Attributes:
        qualname: The ``module.Name`` the pickle asked for.
        args: Positional arguments the pickle passed to the class.
        kwargs: Keyword arguments (rare in pickles).
        state: What the pickle's ``BUILD`` step would have set (usually the instance ``__dict__``).
    """

    qualname: str = "?"
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    state: Any

    def __new__(cls, *args: Any, **kwargs: Any) -> UnresolvedObject:
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state = args, kwargs, None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Record nothing more: ``__new__`` kept the arguments."""

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<unresolved {self.qualname} args={self.args!r} state={self.state!r}>"

    def __reduce__(self) -> Any:  # pickles as the plain description, never as the original class
        return (dict, (self.to_dict(),))

    def to_dict(self) -> dict[str, Any]:
        """A plain description: ``{"class": ..., "args": [...], "kwargs": {...}, "state": ...}``."""
        return {"class": self.qualname, "args": list(self.args), "kwargs": dict(self.kwargs), "state": self.state}


def make_stub(qualname: str) -> type[UnresolvedObject]:
    """A fresh placeholder class standing for ``qualname``."""
    return type(f"Unresolved[{qualname}]", (UnresolvedObject,), {"qualname": qualname})


def is_function_like(name: str) -> bool:
    """True for names that are not classes by convention, or that live in a denied module."""
    module, _, attr = name.rpartition(".")
    if not module or not attr or not attr[:1].isupper():
        return True
    parts = module.split(".")
    return any(".".join(parts[:i]) in DENIED_MODULES for i in range(1, len(parts) + 1))


def torch_safe_names() -> set[str]:
    """Names torch's safe unpickler accepts right now (its defaults and the user's additions)."""
    from torch import _weights_only_unpickler as wou

    return set(wou._get_allowed_globals()) | set(wou._get_user_allowed_globals())


@dataclass(frozen=True)
class Decision:
    """What :func:`decide` made of one global.

    Attributes:
        kind: ``"torch"`` (torch resolves it), ``"allowlisted"``, ``"user"`` (``allow_globals``),
            ``"placeholder"``, ``"refused"`` (unsafe) or ``"tensor-kind"`` (not a plain dense tensor).
        entries: ``(object, name)`` pairs to scope into the load.
        reason: For the refused kinds, what the global would build.
    """

    kind: str
    entries: tuple[tuple[Any, str], ...] = ()
    reason: str = ""


def decide(name: str, *, allow_globals: tuple[str, ...] = (), stub_unknown_classes: bool = True) -> Decision:
    """The one rule for which globals a pickle may name (see the module docstring for the order)."""
    refused = REFUSED_TORCH.get(name, "")
    if not refused and _TENSOR_CLASS.match(name):
        refused = "a legacy tensor class (calling it allocates)"
    if refused:
        return Decision("tensor-kind" if refused in _TENSOR_KINDS else "refused", reason=refused)
    if entries := allowlisted_entries(name):
        return Decision("allowlisted", tuple(entries))
    if name in torch_safe_names():
        return Decision("torch")
    if name in allow_globals:
        return Decision("user", ((resolve_user_global(name), name),))
    if is_function_like(name):
        return Decision("refused", reason="a function or a name from a module that runs code")
    if not stub_unknown_classes:
        return Decision("refused", reason="a class outside the allowlist (stub_unknown_classes=False)")
    return Decision("placeholder", ((make_stub(name), name),))


def allowlisted_entries(name: str) -> list[tuple[Any, str]]:
    """``(object, name)`` entries to scope into a load for an allowlisted name; empty if not allowlisted.

    ``numpy.dtype`` brings the concrete dtype classes along: the unpickler's ``BUILD`` step checks
    the type of the instance ``numpy.dtype(...)`` returned (e.g. ``numpy.dtypes.Float64DType``).
    """
    if name in ALLOWLIST:
        entries = [(ALLOWLIST[name](), name)]
        if name == "numpy.dtype":
            entries += _numpy_dtype_classes()
        return entries
    if _NUMPY_DTYPE_CLASS.match(name):
        return [e for e in _numpy_dtype_classes() if e[1] == name]
    return []


def _numpy_dtype_classes() -> list[tuple[Any, str]]:
    import numpy.dtypes

    return [
        (cls, f"numpy.dtypes.{attr}")
        for attr in dir(numpy.dtypes)
        if attr.endswith("DType") and isinstance(cls := getattr(numpy.dtypes, attr), type)
    ]


def resolve_user_global(name: str) -> Any:
    """Import a class the user allowed by name. Functions are never allowed.

    Raises:
        MissingDependencyError: The module cannot be imported or has no such name.
        UnsafeCheckpointError: The name is not a class.
    """
    not_allowed = UnsafeCheckpointError(
        f"ReadOptions.allow_globals names {name!r}, which is not a class weightport may allow",
        hint="only classes can be allowed; functions and system modules never are",
    )
    if is_function_like(name):  # decided from the name, before importing anything
        raise not_allowed
    module, _, attr = name.rpartition(".")
    try:
        obj = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError, ValueError) as exc:
        raise MissingDependencyError(
            f"ReadOptions.allow_globals names {name!r}, which cannot be imported",
            hint="install the package that defines it, or drop it from allow_globals",
        ) from exc
    if not isinstance(obj, type):
        raise not_allowed
    return obj


@contextlib.contextmanager
def scoped_safe_globals(extras: list[tuple[Any, str]]) -> Iterator[None]:
    """Add ``extras`` to torch's safe globals for the duration of a load, then restore the set exactly.

    Entries the user already registered are left alone (neither re-added nor removed), so the user's
    ``get_safe_globals()`` is identical before and after. Holds :data:`LOAD_LOCK` throughout.
    """
    import torch

    with LOAD_LOCK:
        before = set(torch.serialization.get_safe_globals())
        added: list[Any] = [entry for entry in extras if entry not in before]
        with torch.serialization.safe_globals(added):
            yield


def find_unresolved(obj: Any, path: str = "") -> Iterator[tuple[str, UnresolvedObject]]:
    """Yield ``(path, placeholder)`` for every :class:`UnresolvedObject` inside ``obj`` (each once)."""
    from weightport.formats.walk import walk

    seen: set[int] = set()
    for where, value in walk(obj, path):
        if isinstance(value, UnresolvedObject) and id(value) not in seen:
            seen.add(id(value))
            yield where, value


def holds_tensor(obj: Any) -> bool:
    """True when a tensor is reachable from ``obj`` through containers and placeholders."""
    import torch

    from weightport.formats.walk import walk

    return any(isinstance(value, torch.Tensor) for _, value in walk(obj))
