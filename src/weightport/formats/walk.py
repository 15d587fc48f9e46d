"""Walks over what a pickle built, linear in its size and bounded in depth.

A pickle is a program: with its memo it can make one dict the value of two keys of the next one,
forty times over (``d = {"a": d, "b": d}``) — 2 kB on disk, 2**40 paths for any walk that follows
every reference; or nest 3,000 dicts, past Python's recursion limit; or make a list contain itself.
:func:`check_structure` runs once, right after deserialisation, iteratively and visiting each
container once: it refuses cycles, nesting deeper than ``ReadOptions.max_depth`` and structures
that a naive walk would expand past ``ReadOptions.max_objects``. After it, any recursive walk over
the object is bounded. :func:`walk` is the one walk the readers use: each container once.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from weightport.errors import ResourceLimitError
from weightport.formats.base import ReadOptions, limit_hint

_HINT = "the file is crafted or damaged; " + limit_hint("max_depth", "max_objects")


def items(obj: Any) -> list[tuple[str, Any]] | None:
    """The children of a container a pickle can build, as ``(label, value)``; ``None`` for a leaf."""
    from weightport.formats.safety import UnresolvedObject

    if isinstance(obj, dict):
        found = [(str(k), v) for k, v in obj.items()]
        found += [(f"<key {i}>", k) for i, k in enumerate(obj) if isinstance(k, (tuple, frozenset))]
        return found
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(str(i), v) for i, v in enumerate(obj)]
    if isinstance(obj, UnresolvedObject):
        return [("args", obj.args), ("kwargs", obj.kwargs), ("state", obj.state)]
    if type(obj).__module__ == "argparse" and hasattr(obj, "__dict__"):
        return list(vars(obj).items())
    return None


@dataclass
class Structure:
    """What :func:`check_structure` measured.

    Attributes:
        expanded: How many objects a walk that follows every reference would visit.
        holding_tensors: ``id()`` of every container from which a tensor is reachable.
    """

    expanded: int = 0
    holding_tensors: set[int] = field(default_factory=set)


def check_structure(file: Path, obj: Any, options: ReadOptions) -> Structure:
    """Refuse cycles, nesting past ``options.max_depth`` and expansion past ``options.max_objects``.

    Raises:
        ResourceLimitError: Naming the file and the limit that was passed.
    """
    import torch

    structure = Structure()
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    root = items(obj)
    if root is None:
        structure.expanded = 1
        return structure
    # frame: [node, children, next index, expanded size so far, reaches a tensor]
    stack: list[list[Any]] = [[obj, root, 0, 1, False]]
    on_path.add(id(obj))
    while stack:
        frame = stack[-1]
        node, kids, index = frame[0], frame[1], frame[2]
        if index == len(kids):
            stack.pop()
            on_path.discard(id(node))
            sizes[id(node)] = frame[3]
            if frame[4]:
                structure.holding_tensors.add(id(node))
            if stack:
                stack[-1][3] += frame[3]
                stack[-1][4] = stack[-1][4] or frame[4]
            continue
        frame[2] += 1
        label, child = kids[index]
        grand = items(child)
        cid = id(child)
        if grand is None:
            frame[3] += 1
            frame[4] = frame[4] or isinstance(child, torch.Tensor)
        elif cid in sizes:
            frame[3] += sizes[cid]
            frame[4] = frame[4] or cid in structure.holding_tensors
        elif cid in on_path:
            raise ResourceLimitError(
                f"{file}: the pickled object contains itself (a reference cycle at {label!r}); "
                "expected a tree of containers",
                hint=_HINT,
            )
        elif len(stack) >= options.max_depth:
            raise ResourceLimitError(
                f"{file}: containers nested deeper than ReadOptions.max_depth={options.max_depth}", hint=_HINT
            )
        else:
            on_path.add(cid)
            stack.append([child, grand, 0, 1, False])
        if frame[3] > options.max_objects:
            raise ResourceLimitError(
                f"{file}: the pickled object expands to more than ReadOptions.max_objects={options.max_objects} "
                "objects when every reference is followed (a memo-reference bomb)",
                hint=_HINT,
            )
    structure.expanded = sizes[id(obj)]
    return structure


def walk(obj: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Yield ``(dotted path, value)`` for ``obj`` and everything inside it, entering each container
    once (by identity), iteratively. Linear in the number of objects and references."""
    seen: set[int] = set()
    stack: list[tuple[str, Any]] = [(path, obj)]
    while stack:
        where, node = stack.pop()
        yield where, node
        kids = items(node)
        if kids is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack += [(f"{where}.{label}" if where else label, value) for label, value in reversed(kids)]
