"""Which pickle globals a checkpoint may use, and inert placeholders for the ones it may not.

Safety rests on three rules, in this order:

1. Every pickle goes through torch's ``weights_only`` unpickler; weightport never calls an
   unrestricted ``pickle.load`` / ``torch.load(weights_only=False)``, and never retries one.
2. Beyond torch's own allowlist, only the small documented :data:`ALLOWLIST` (plain value classes:
   ``argparse.Namespace``, numpy scalars and dtypes) and the classes a user names in
   ``ReadOptions.allow_globals`` are resolved to real objects.
3. Any other class-like global becomes an :class:`UnresolvedObject` subclass registered under its
   name with ``torch.serialization.safe_globals([(stub, "module.Name")])``: the module is never
   imported, nothing of it runs; the placeholder only records its constructor arguments and state.
   Function-like names and names from modules that only serve to run code are refused outright
   (:data:`DENIED_MODULES`), since no honest checkpoint needs them.
"""

from __future__ import annotations

import contextlib
import importlib
import re
import threading
from collections.abc import Callable, Iterator
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


def _numpy_scalar() -> Any:
    import numpy

    core = getattr(numpy, "_core", None) or numpy.core
    return core.multiarray.scalar


def _numpy_dtype() -> Any:
    import numpy

    return numpy.dtype


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


def find_unresolved(obj: Any, path: str = "", *, _depth: int = 0) -> Iterator[tuple[str, UnresolvedObject]]:
    """Yield ``(path, placeholder)`` for every :class:`UnresolvedObject` inside ``obj``."""
    if _depth > 200:
        return
    if isinstance(obj, UnresolvedObject):
        yield path, obj
        children: Any = {"args": obj.args, "kwargs": obj.kwargs, "state": obj.state}
    elif isinstance(obj, dict):
        children = obj
    elif isinstance(obj, (list, tuple, set, frozenset)):
        children = dict(enumerate(obj))
    elif type(obj).__module__ == "argparse" and hasattr(obj, "__dict__"):
        children = vars(obj)
    else:
        return
    for key, value in list(children.items()):
        yield from find_unresolved(value, f"{path}.{key}" if path else str(key), _depth=_depth + 1)


def holds_tensor(obj: Any, *, _depth: int = 0) -> bool:
    """True when a tensor is reachable from ``obj`` through containers and placeholders."""
    import torch

    if isinstance(obj, torch.Tensor):
        return True
    if _depth > 200:
        return False
    if isinstance(obj, UnresolvedObject):
        return holds_tensor((obj.args, obj.kwargs, obj.state), _depth=_depth + 1)
    if isinstance(obj, dict):
        return any(holds_tensor(v, _depth=_depth + 1) for v in obj.values())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return any(holds_tensor(v, _depth=_depth + 1) for v in obj)
    return False
