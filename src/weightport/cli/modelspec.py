"""``--model MODULE:CALLABLE``: build the model a command plans or converts against.

``MODULE`` is an importable module (``mypkg.models``) or a ``.py`` file; ``CALLABLE`` is a dotted
attribute in it (a class or factory). Two prefixes name a library's own builder instead:
``torchvision:NAME`` (``torchvision.models.get_model``) and ``timm:NAME`` (``timm.create_model``),
always without pretrained weights. ``num_classes=N`` is passed when asked for.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.errors import MissingDependencyError, UsageError

if TYPE_CHECKING:
    from torch import nn

Builder = Callable[[str, dict[str, Any]], "nn.Module"]


def _torchvision(name: str, kwargs: dict[str, Any]) -> nn.Module:
    from torchvision import models

    return models.get_model(name, weights=None, **kwargs)


def _timm(name: str, kwargs: dict[str, Any]) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False, **kwargs)


#: Library builders by prefix: ``torchvision:resnet18`` builds ``resnet18`` with no weights.
LIBRARY_BUILDERS: dict[str, Builder] = {"torchvision": _torchvision, "timm": _timm}


def build_model(spec: str, *, num_classes: int | None = None) -> nn.Module:
    """The module ``spec`` names, built (with ``num_classes`` when given).

    Raises:
        UsageError: ``spec`` is not ``MODULE:CALLABLE``, or names nothing callable.
        MissingDependencyError: The module cannot be imported.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(
            f"--model {spec!r} is not MODULE:CALLABLE",
            hint="e.g. --model torchvision:resnet18, --model timm:resnet18, --model mypkg.models:Net "
            "or --model path/to/models.py:Net",
        )
    kwargs = {} if num_classes is None else {"num_classes": num_classes}
    builder = LIBRARY_BUILDERS.get(module_name)
    if builder is not None:
        return builder(attr, kwargs)
    factory = _find_callable(_import(module_name), attr, spec)
    return factory(**kwargs)


def _import(module_name: str) -> Any:
    if module_name.endswith(".py"):
        return _import_file(Path(module_name))
    if "" not in sys.path and "." not in sys.path:  # a console script does not see the working directory
        sys.path.insert(0, "")
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise MissingDependencyError(
            f"cannot import {module_name!r} for --model: {exc}",
            hint="install it, run from the directory that holds it, or name a file: --model path/to/file.py:Net",
        ) from exc


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise UsageError(f"--model file not found: {path}", hint="give the path of a .py file that defines the model")
    name = f"_weightport_model_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has a loader
        raise UsageError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def _find_callable(module: Any, attr: str, spec: str) -> Callable[..., nn.Module]:
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n)))
            raise UsageError(
                f"{spec!r}: {getattr(module, '__name__', module)!r} has no attribute {attr!r}",
                hint="callables there: " + ", ".join(public[:12]) + (" …" if len(public) > 12 else ""),
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{spec!r} is not callable", hint="name a model class or a factory function")
    return obj
