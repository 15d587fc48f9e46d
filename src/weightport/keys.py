"""Helpers on dotted state-dict keys: split, prefixes, folding for display, glob matching."""

from __future__ import annotations

import fnmatch
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from weightport.text import clipped

#: Leaf names of tensors that are training state, not weights: a checkpoint may lack them or carry extra
#: ones without anything being lost (a batch norm's step counter).
TRAINING_STATE_LEAVES: frozenset[str] = frozenset({"num_batches_tracked"})


def is_training_state(key: str) -> bool:
    """Whether a state-dict key holds training state (``bn1.num_batches_tracked``) rather than a weight."""
    return key.rpartition(".")[2] in TRAINING_STATE_LEAVES


def segments(key: str) -> list[str]:
    """``"layer1.0.conv1.weight"`` → ``["layer1", "0", "conv1", "weight"]``."""
    return key.split(".")


def parent(key: str) -> str:
    """The owning module's path: ``"layer1.0.conv1.weight"`` → ``"layer1.0.conv1"`` (``""`` at the root)."""
    return key.rpartition(".")[0]


def matches_any(key: str, patterns: Sequence[str]) -> bool:
    """Whether ``key`` matches a glob in ``patterns``, or lies under a module a pattern names exactly.

    ``"fc"`` matches ``fc.weight`` and ``fc.bias``; ``"*.fc.*"`` and ``"layer4.*"`` are globs.
    """
    return any(key == p or key.startswith(p + ".") or fnmatch.fnmatchcase(key, p) for p in patterns)


_INDEX = re.compile(r"^\d+$")


def fold_keys(keys: Iterable[str], limit: int | None = None) -> list[str]:
    """Fold keys that differ in one segment into brace patterns, for readable listings.

    ``layer1.0.conv1.weight`` and ``layer1.1.conv1.weight`` become ``layer1.{0,1}.conv1.weight``;
    runs of indices are written as ranges (``blocks.{0..11}.attn.qkv.weight``). Folding repeats
    until nothing changes, so nested repeats collapse too.
    """
    items = list(dict.fromkeys(keys))
    while True:
        signatures = {key: _signatures(key) for key in items}
        sizes = Counter(sig for sigs in signatures.values() for sig in sigs)
        # Each key joins its largest group; numeric positions win ties (indices fold first).
        choice = {
            key: max(sigs, key=lambda s: (sizes[s], _is_index(key, s[0]), -s[0])) for key, sigs in signatures.items()
        }
        members: dict[tuple[int, tuple[str, ...]], list[str]] = defaultdict(list)
        for key in items:
            members[choice[key]].append(key)
        out: list[str] = []
        emitted: set[tuple[int, tuple[str, ...]]] = set()
        for key in items:
            sig = choice[key]
            group = members[sig]
            if len(group) < 2:
                out.append(key)
            elif sig not in emitted:
                emitted.add(sig)
                parts = list(sig[1])
                parts[sig[0]] = _brace([segments(k)[sig[0]] for k in group])
                out.append(".".join(parts))
        if len(out) == len(items):
            break
        items = out
    return clipped(items, limit)


def _signatures(key: str) -> list[tuple[int, tuple[str, ...]]]:
    parts = segments(key)
    return [(i, tuple(parts[:i] + ["\0"] + parts[i + 1 :])) for i in range(len(parts))]


def _is_index(key: str, position: int) -> bool:
    return bool(_INDEX.match(segments(key)[position]))


def _brace(values: list[str]) -> str:
    values = list(dict.fromkeys(values))
    if all(_INDEX.match(v) for v in values):
        nums = sorted(int(v) for v in values)
        if len(nums) > 2 and nums == list(range(nums[0], nums[-1] + 1)):
            return f"{{{nums[0]}..{nums[-1]}}}"
    return "{" + ",".join(values) + "}"
