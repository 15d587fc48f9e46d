"""Map checkpoint keys to target keys: exact names, then the best (strip prefix, add prefix) pair.

The prefix search finds where a checkpoint belongs in the target without being told: a torchvision
ResNet into a LightningModule's ``self.backbone`` (add ``backbone.``), a Lightning checkpoint of
``self.net`` into ``self.encoder`` (strip ``net.``, add ``encoder.``). Each checkpoint key and target
key is split at up to ``MAX_DEPTH`` leading segments and the pairs are counted through a suffix
index, so the search is linear in the number of keys.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import product

from weightport.errors import AmbiguousMappingError

MAX_DEPTH = 3


@dataclass(frozen=True)
class Match:
    """One checkpoint key assigned to one target key, and how."""

    source_key: str
    target_key: str
    how: str  # "exact", "prefix" or "structural"
    strip: str = ""
    add: str = ""
    confidence: float | None = None
    reason: str = ""

    @property
    def detail(self) -> str:
        """The key change for the report (``prefix 'net.'->'backbone.'``), or the structural reason."""
        if self.how == "structural":
            return f"structural ({self.reason})" if self.reason else "structural"
        if self.strip and self.add:
            return f"prefix {self.strip!r}->{self.add!r}"
        return f"strip {self.strip!r}" if self.strip else f"add {self.add!r}" if self.add else ""


def _splits(key: str, max_depth: int) -> list[tuple[str, str]]:
    """``key`` cut after each of its first ``max_depth`` dots: ``[("", key), ("a.", "b.c"), ("a.b.", "c")]``."""
    out = [("", key)]
    cut = -1
    for _ in range(max_depth):
        cut = key.find(".", cut + 1)
        if cut < 0:
            break
        out.append((key[:cut + 1], key[cut + 1:]))
    return out


def match_keys(
    source: Sequence[str], target: Sequence[str], *, into: str | None = None, min_group: int = 2
) -> list[Match]:
    """Assign checkpoint keys to target keys.

    Args:
        source: Checkpoint keys (canonicalised, renamed).
        target: Target state-dict keys.
        into: The target submodule the checkpoint belongs to; when given, every match lands under it.
        min_group: After the first prefix pair, further pairs must match at least this many keys.

    Raises:
        AmbiguousMappingError: Two different target submodules fit the checkpoint equally well.
    """
    target_set = set(target)
    taken: set[str] = set()
    matches: list[Match] = []
    if into is None:
        for key in source:
            if key in target_set:
                matches.append(Match(key, key, "exact"))
                taken.add(key)
    done = {m.source_key for m in matches}
    # The first prefix pair places the checkpoint as a whole (it must cover at least half of the
    # keys on one side, and a tie is an error); later pairs place leftovers (a head under another
    # name) and are skipped rather than guessed when they tie.
    major = not matches
    while True:
        left_source = [k for k in source if k not in done]
        left_target = [k for k in target if k not in taken]
        if not left_source or not left_target:
            break
        best = _best_pair(left_source, left_target, into)
        if best is None:
            break
        (strip, add), count, rivals = best
        if major and 2 * count < min(len(left_source), len(left_target)) and into is None:
            break  # no placement explains most of the checkpoint: leave it to structural alignment
        if not major and (count < min_group or rivals):
            break
        if rivals:
            raise AmbiguousMappingError(
                f"the checkpoint fits {count} tensors equally well as {_spell((strip, add)).rstrip('.')!r} and "
                + ", ".join(repr(r.rstrip(".")) for r in rivals[:5]),
                hint="name the target submodule with into='...', or leave out the checkpoint part that does not"
                " belong with exclude=[...]",
            )
        left_target_set = set(left_target)
        for key in left_source:
            if key.startswith(strip):
                dest = add + key[len(strip):]
                if dest in left_target_set and dest not in taken:
                    how = "exact" if dest == key else "prefix"
                    matches.append(Match(key, dest, how, strip, add))
                    taken.add(dest)
                    done.add(key)
        major = False
    return matches


def _best_pair(
    source: Sequence[str], target: Sequence[str], into: str | None
) -> tuple[tuple[str, str], int, list[str]] | None:
    """The (strip, add) pair that places the most checkpoint keys, and the rivals that tie with it.

    A rival is a pair that places as many keys but *differently*: other destinations for the same
    checkpoint keys, or other checkpoint keys for the same destinations. Pairs that only spell the
    same placement another way (``'model.'->''`` and ``'model.net.'->'net.'``) are not rivals, and
    nothing else (not the length of a prefix, not the order of the keys) breaks a tie.
    """
    whole = _whole_placements(source, target, into)
    if whole:
        return _ranked(whole, len(source), source, target)
    return _counted_pair(source, target, into)


def _counted_pair(
    source: Sequence[str], target: Sequence[str], into: str | None
) -> tuple[tuple[str, str], int, list[str]] | None:
    """:func:`_best_pair` by counting every (strip, add) pair through a suffix index."""
    index: dict[str, list[str]] = defaultdict(list)  # suffix -> target prefixes
    if into is not None:
        add = _into_prefix(into)
        for key in target:
            if key.startswith(add):
                index[key[len(add):]].append(add)
    else:
        for key in target:
            for prefix, suffix in _splits(key, MAX_DEPTH):
                index[suffix].append(prefix)
    strips: dict[str, list[str]] = defaultdict(list)  # suffix -> checkpoint prefixes
    for key in source:
        for strip, suffix in _splits(key, MAX_DEPTH):
            strips[suffix].append(strip)
    counts: Counter[tuple[str, str]] = Counter()
    for suffix, prefixes in strips.items():
        adds = index.get(suffix)
        if adds:  # every (strip, add) pair that places this suffix, counted in C (~25k pairs for a ResNet)
            counts.update(product(prefixes, adds))
    if not counts:
        return None
    # Most keys first; then the smallest change (shortest prefixes), which only chooses a spelling.
    count = max(counts.values())
    return _ranked([p for p, c in counts.items() if c == count], count, source, target)


def _ranked(best: list[tuple[str, str]], count: int, source: Sequence[str],
            target: Sequence[str]) -> tuple[tuple[str, str], int, list[str]]:
    """Of the pairs that all place ``count`` keys, the smallest change and its rivals."""
    ranked = sorted(best, key=lambda p: (len(p[0]) + len(p[1]), p))
    pair = ranked[0]
    if count <= 1 or len(ranked) == 1:
        return pair, count, []
    target_set = set(target)
    placement = _placement(pair, source, target_set)
    rivals = [
        _spell(p) for p in ranked[1:] if _placement(p, source, target_set) != placement
    ]
    return pair, count, rivals


def _is_split(prefix: str) -> bool:
    """Whether ``prefix`` is one of the prefixes :func:`_splits` cuts (empty, or up to ``MAX_DEPTH`` segments)."""
    return not prefix or (prefix.endswith(".") and prefix.count(".") <= MAX_DEPTH)


def _whole_placements(source: Sequence[str], target: Sequence[str], into: str | None) -> list[tuple[str, str]]:
    """Every (strip, add) pair that places *all* of ``source`` (the common case: a whole checkpoint
    under one prefix), found without counting every pair.

    No pair can place more keys than there are, so when one places them all, these are exactly the
    pairs :func:`_counted_pair` would find with the highest count: the same answer, rivals included.
    Empty when no pair places every key (or the target has fewer keys): then the pairs are counted.
    """
    if not source or len(source) > len(target):
        return []
    target_set = set(target)
    forced = None if into is None else _into_prefix(into)  # the one add the target submodule allows, at any depth
    out: list[tuple[str, str]] = []
    for strip, suffix in _splits(source[0], MAX_DEPTH):
        if not all(k.startswith(strip) for k in source):
            break  # a longer strip of the first key is not a prefix of every key either
        if forced is not None:
            adds = [forced] if forced + suffix in target_set else []
        else:
            adds = [t[:len(t) - len(suffix)] for t in target if t.endswith(suffix)]
            adds = [add for add in adds if _is_split(add)]
        cut = len(strip)
        out += [(strip, add) for add in adds if all(add + k[cut:] in target_set for k in source)]
    return out


def _into_prefix(into: str) -> str:
    """The key prefix of the target submodule ``into`` names (``""`` for the whole model)."""
    return into.rstrip(".") + "." if into else ""


def _placement(pair: tuple[str, str], source: Sequence[str], target: set[str]) -> frozenset[tuple[str, str]]:
    """The (checkpoint key, target key) pairs that stripping ``pair[0]`` and adding ``pair[1]`` makes."""
    strip, add = pair
    return frozenset(
        (key, add + key[len(strip):]) for key in source if key.startswith(strip) and add + key[len(strip):] in target
    )


def _spell(pair: tuple[str, str]) -> str:
    strip, add = pair
    return f"{strip}*->{add}*" if strip else add
