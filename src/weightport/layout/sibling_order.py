"""When several modules of one signature are paired, what proves which goes with which.

Structural alignment (:mod:`weightport.layout.structural`) groups same-shaped modules and would pair
the k-th of a group on one side with the k-th on the other. Registration order proves that only for
members of a *sequence*: ``blocks.3`` ↔ ``blocks.3``, torchvision's ``encoder_layer_3`` ↔ timm's
``blocks.3``. Same-shaped *siblings* inside one block are registered in whatever order the library's
author wrote them (torchvision's RegNet registers the shortcut ``proj`` before the main branch
``f.a``, timm ``conv1..3`` before ``downsample``): their order proves nothing. This module is the one
place that decides, from the module paths alone, whether a group's pairing is proven:

- **by sequence position**: on both sides every two members part at an index component (a numbered
  child of a ``Sequential``/``ModuleList``, or a child of a module whose children are all numbered
  alike: ``encoder_layer_0``, ``encoder_layer_1``...), so their order is their sequence's; the k-th
  pairs with the k-th;
- **by names**: the members fall into named classes (what is left of the path once the index
  components are removed: ``norm1``, ``norm2``) that correspond one-to-one across the sides by their
  distinguishing words (``q`` ↔ ``query``; numbers as ordinals: ``ln_1`` ↔ ``norm1``, ``bn0`` ↔
  ``bn1`` when the other side counts ``bn1``, ``bn2``; one class left on each side pairs by
  elimination), and members of one class pair by position;
- by position as above, counting numbered names (``bn1``, ``bn2`` beside other children) as indexes;
- otherwise the group is **ambiguous** (:func:`order_proof` returns ``None``): a proof must come from
  elsewhere (the two models' dataflow, a verification, rules) or the load is refused.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["GroupProof", "Indexes", "index_paths", "order_proof"]

_DIGITS = re.compile(r"\d+")
_TOKEN = re.compile(r"[a-z]+|\d+")

#: How sure each kind of proof is. Never as sure as a module whose shapes occur once on each side (1.0).
CONFIDENCE = {"dataflow": 0.9, "names": 0.8, "position": 0.8, "verification": 0.7}


@dataclass(frozen=True)
class GroupProof:
    """A proven pairing of a group of same-shaped modules.

    Attributes:
        pairs: Source module path → target module path, one-to-one over the group.
        kind: What proved it: ``"position"``, ``"names"``, ``"dataflow"`` or ``"verification"``.
        reason: Why, in words, for the report.
    """

    pairs: dict[str, str]
    kind: str
    reason: str

    @property
    def confidence(self) -> float:
        return CONFIDENCE[self.kind]

    def covers(self, source: Sequence[str], target: Sequence[str]) -> bool:
        """Whether the pairs are a one-to-one map of exactly ``source`` onto exactly ``target``."""
        return sorted(self.pairs) == sorted(source) and sorted(self.pairs.values()) == sorted(target)


@dataclass(frozen=True)
class Indexes:
    """Which module paths end in a sequence index, on one side (:func:`index_paths`).

    Attributes:
        sequence: Paths whose last component is a number (``blocks.3``), or one of children all numbered
            alike (``encoder_layer_3`` among ``encoder_layer_*``).
        numbered: Those, and paths whose last component differs from a sibling's only in its numbers
            (``bn1`` beside ``bn2``, among other children): numbered in order of use, as libraries do.
    """

    sequence: frozenset[str]
    numbered: frozenset[str]


def index_paths(paths: Iterable[str]) -> Indexes:
    """The index components of every module path of one side (see :class:`Indexes`)."""
    children: dict[str, set[str]] = defaultdict(set)
    for path in paths:
        parts = path.split(".") if path else []
        for i, part in enumerate(parts):
            children[".".join(parts[:i])].add(part)
    sequence, numbered = set(), set()
    for parent, names in children.items():
        masked = defaultdict(list)
        for name in names:
            masked[_DIGITS.sub("#", name)].append(name)
        for name in names:
            path = f"{parent}.{name}" if parent else name
            if name.isdigit() or (len(masked) == 1 and _DIGITS.search(name)):
                sequence.add(path)
            elif _DIGITS.search(name) and len(masked[_DIGITS.sub("#", name)]) > 1:
                numbered.add(path)
    return Indexes(frozenset(sequence), frozenset(sequence | numbered))


def order_proof(source: Sequence[str], target: Sequence[str], source_index: Indexes,
                target_index: Indexes) -> GroupProof | None:
    """The pairing of a group of same-shaped modules that their paths prove, or ``None`` (ambiguous).

    Args:
        source: The group's checkpoint module paths, in checkpoint order.
        target: The group's model module paths (as many), in registration order.
        source_index: :func:`index_paths` of every checkpoint module path.
        target_index: :func:`index_paths` of every model module path.
    """
    if _in_sequence(source, source_index.sequence) and _in_sequence(target, target_index.sequence):
        return GroupProof(dict(zip(source, target)), "position",
                          "same shapes, paired by their position in a sequence")
    src_classes = _classes(source, source_index.sequence)
    tgt_classes = _classes(target, target_index.sequence)
    matched = _matched_classes(list(src_classes), list(tgt_classes))
    if matched is not None and all(len(src_classes[s]) == len(tgt_classes[t]) for s, t in matched.items()):
        pairs = {s: t for sc, tc in matched.items() for s, t in zip(src_classes[sc], tgt_classes[tc])}
        shown = ", ".join(f"{'.'.join(s) or '<root>'}↔{'.'.join(t) or '<root>'}"
                          for s, t in list(matched.items())[:4])
        return GroupProof(pairs, "names", f"same shapes, paired by their names ({shown}) and position")
    # Numbered names as positions (``block.0``, ``block.1`` ↔ ``bn1``, ``bn2``): one sequence on each side.
    if _in_sequence(source, source_index.numbered) and _in_sequence(target, target_index.numbered):
        return GroupProof(dict(zip(source, target)), "position",
                          "same shapes, paired by their position in a sequence of numbered modules")
    return None


def _in_sequence(paths: Sequence[str], index: frozenset[str]) -> bool:
    """Whether every two of ``paths`` part at an index component (their order is their sequence's)."""
    split = [p.split(".") for p in paths]
    for i, a in enumerate(split):
        for b in split[i + 1:]:
            depth = next((d for d, (x, y) in enumerate(zip(a, b)) if x != y), None)
            if depth is None or ".".join(a[: depth + 1]) not in index or ".".join(b[: depth + 1]) not in index:
                return False
    return True


def _classes(paths: Sequence[str], index: frozenset[str]) -> dict[tuple[str, ...], list[str]]:
    """Paths grouped by their non-index components, in order."""
    classes: dict[tuple[str, ...], list[str]] = defaultdict(list)
    for path in paths:
        parts = path.split(".") if path else []
        name = tuple(p for i, p in enumerate(parts) if ".".join(parts[: i + 1]) not in index)
        classes[name].append(path)
    return classes


def _words(classes: list[tuple[str, ...]]) -> list[set[str]]:
    """Each class's words, less those every class of the side has (they tell nothing apart).

    A number in a name is an ordinal among the names that differ only in their numbers (``bn0``,
    ``bn1`` → first, second; so are ``bn1``, ``bn2``): libraries count from 0 or from 1.
    """
    numbers: dict[tuple[int, str], set[tuple[int, ...]]] = defaultdict(set)
    for c in classes:
        for i, part in enumerate(c):
            if _DIGITS.search(part):
                numbers[(i, _DIGITS.sub("#", part))].add(_numbers(part))
    words = []
    for c in classes:
        found: set[str] = set()
        for i, part in enumerate(c):
            found.update(w for w in _TOKEN.findall(part.lower()) if not w.isdigit())
            if _DIGITS.search(part):
                ranks = sorted(numbers[(i, _DIGITS.sub("#", part))])
                found.add(f"#{ranks.index(_numbers(part))}")
        words.append(found)
    common = set.intersection(*words) if words else set()
    return [w - common for w in words]


def _numbers(part: str) -> tuple[int, ...]:
    return tuple(int(n) for n in _DIGITS.findall(part))


def _same_word(a: str, b: str) -> bool:
    return a == b or (a.isalpha() and b.isalpha() and (a.startswith(b) or b.startswith(a)))


def _matched_classes(src: list[tuple[str, ...]], tgt: list[tuple[str, ...]]
                     ) -> dict[tuple[str, ...], tuple[str, ...]] | None:
    """A one-to-one correspondence of the classes by their words (each the other's unique best), with one
    class left on each side paired by elimination; ``None`` when the words do not decide it."""
    if len(src) != len(tgt):
        return None
    src_words, tgt_words = _words(src), _words(tgt)
    scores = [[sum(any(_same_word(a, b) for b in tw) for a in sw) for tw in tgt_words] for sw in src_words]
    matched: dict[int, int] = {}
    for i, row in enumerate(scores):
        best = max(row)
        column = [scores[k][row.index(best)] for k in range(len(src))]
        if best > 0 and row.count(best) == 1 and column.count(best) == 1 and max(column) == best:
            matched[i] = row.index(best)
    left_src = [i for i in range(len(src)) if i not in matched]
    left_tgt = [j for j in range(len(tgt)) if j not in matched.values()]
    if len(left_src) == 1:
        matched[left_src[0]] = left_tgt[0]
    elif left_src:
        return None
    return {src[i]: tgt[j] for i, j in matched.items()}
