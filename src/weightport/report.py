"""The load plan (a dry run) and the load report: what goes where, and what was done to it."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

from weightport.errors import (
    ArchitectureMismatchError,
    DtypeError,
    NonFiniteWeightsError,
    ShapeMismatchError,
    StrictLoadError,
)
from weightport.keys import fold_keys, is_training_state, parent
from weightport.units import format_bytes

#: Shape mismatches in this many modules or more mean the checkpoint is for another architecture
#: (a layer or two changed on purpose is a shape mismatch, with a reinit= hint that works).
ARCHITECTURE_MISMATCH_MODULES = 3

#: The ``how`` of a tensor found by mapping another implementation's layout (not by its own names):
#: a plan holding one is worth verifying against the source architecture.
MAPPED_HOW = frozenset({"structural", "layout"})


@dataclass
class TensorRecord:
    """One checkpoint tensor's way into the model.

    Attributes:
        source_key: The key as written in the checkpoint (after the container).
        target_key: The key in the target module's state dict.
        source_shape: Shape in the checkpoint.
        target_shape: Shape in the model.
        source_dtype: Dtype in the checkpoint.
        target_dtype: Dtype in the model (weights are always cast to it).
        how: How the key was found: ``exact``, ``prefix``, ``rename``, ``layout``, ``structural``.
        ops: Every transformation, in order (``strip module.``, ``cast float16->float32``...).
        confidence: For structural pairings, how sure the alignment is (0..1).
    """

    source_key: str
    target_key: str
    source_shape: tuple[int, ...]
    target_shape: tuple[int, ...]
    source_dtype: str
    target_dtype: str
    how: str
    ops: list[str] = field(default_factory=list)
    confidence: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["source_shape"] = list(self.source_shape)
        out["target_shape"] = list(self.target_shape)
        if self.confidence is None:
            del out["confidence"]
        return out


@dataclass
class Reinit:
    """A target key re-initialised on purpose, and why.

    Attributes:
        key: The target key.
        reason: Why (``head: 1000 classes in the checkpoint, 5 in the model``, ``named in reinit``).
        replaced: The checkpoint key whose values were there for it and were not used, if any.
    """

    key: str
    reason: str
    replaced: str | None = None


@dataclass
class Mismatch:
    """A checkpoint tensor that does not fit its target and that no rule adapts."""

    source_key: str
    target_key: str
    source_shape: tuple[int, ...]
    target_shape: tuple[int, ...]


@dataclass
class Uncastable:
    """A checkpoint tensor whose dtype cannot become the target's without changing its meaning."""

    source_key: str
    target_key: str
    source_dtype: str
    target_dtype: str
    reason: str
    hint: str


class _Sha256:
    """``SourceInfo.sha256``: a digest, or a pending one (``resolve()``) computed when first read."""

    def __get__(self, obj: Any, owner: type | None = None) -> str | None:
        if obj is None:
            return None  # the dataclass field's default
        value = obj.__dict__.get("_sha256")
        if value is not None and not isinstance(value, str):
            value = value.resolve()
            obj.__dict__["_sha256"] = value
        return value

    def __set__(self, obj: Any, value: Any) -> None:
        obj.__dict__["_sha256"] = value


@dataclass
class SourceInfo:
    """Where the weights came from.

    ``sha256`` of an unpinned local file may be given pending (a :class:`weightport.digest.PendingDigest`):
    it is hashed the first time it is read, not during the load (SECURITY.md, *When files are hashed*).
    """

    uri: str
    path: str | None = None
    format: str | None = None
    sha256: str | None = _Sha256()  # type: ignore[assignment]
    bytes: int | None = None
    container: str | None = None
    resolved_by: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v not in (None, {}, [])}


#: What to do about tensors refused as NaN/infinite or overflowing the model's dtype (plan, apply, sharded).
NONFINITE_HINT = ("the checkpoint is damaged or diverged (check_finite=False, the default, loads NaN/Inf as the file "
                  "holds them), or its values do not fit the model's dtype (build the model in a wider dtype, or "
                  "leave those tensors out with exclude=[...])")

#: The largest share of a model's parameters the default head rule may re-initialise unnamed.
MAX_UNNAMED_REINIT_SHARE = 0.05


@dataclass
class LoadPlan:
    """A dry run of a load: printable, comparable, JSON-serialisable; ``weightport.apply`` carries it out.

    A plan is data only: what carries it out (the tensors, fitted and cast) is kept by the loader.

    Attributes:
        source: Provenance of the checkpoint.
        into: The target submodule, when one was named or found.
        strict: Whether every target weight must be loaded or re-initialised on purpose.
        loaded: One record per tensor that will be loaded.
        missing: Target keys the checkpoint does not cover (and that are not re-initialised).
        unexpected: Checkpoint weights that go nowhere (an error under ``strict``, as in torch; training
            state such as ``num_batches_tracked`` is never counted).
        reinitialized: Target keys re-initialised on purpose, with the reason.
        mismatched: Pairs whose shapes do not fit (an error when the plan is applied).
        nonfinite: Checkpoint keys whose finite values would overflow the target dtype (always looked
            for, in the tensors a narrowing cast copies), or, with ``check_finite=True``, whose values are
            NaN or infinite: an error when the plan is applied.
        finite_checked: Whether every loaded value was read for NaN/infinity (``check_finite=True``;
            off by default, see SECURITY.md §6).
        uncastable: Checkpoint tensors whose dtype cannot become the target's (complex into real, integer
            into float, a lossy cast under ``lossy_cast="error"``): an error when the plan is applied.
        coverage: Fraction of the target's parameter elements that come from the checkpoint.
        notes: Things worth knowing (EMA weights present, dropped training state, fallbacks).
        dropped_head: Checkpoint keys of its classification layer, left out because the model's head is
            re-initialised or the model has none.
        reinit_share: Fraction of the model's parameters re-initialised by the default head rule (when
            ``reinit`` names nothing); above :data:`MAX_UNNAMED_REINIT_SHARE` the load is refused.
    """

    source: SourceInfo
    into: str | None
    strict: bool
    loaded: list[TensorRecord] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    reinitialized: list[Reinit] = field(default_factory=list)
    mismatched: list[Mismatch] = field(default_factory=list)
    nonfinite: list[str] = field(default_factory=list)
    uncastable: list[Uncastable] = field(default_factory=list)
    coverage: float = 0.0
    min_coverage: float | None = None
    notes: list[str] = field(default_factory=list)
    dropped_head: list[str] = field(default_factory=list)
    reinit_share: float = 0.0
    excluded: int = 0
    finite_checked: bool = False

    @property
    def maps_another_layout(self) -> bool:
        """Whether a tensor was found by mapping another implementation's layout (``how`` in ``MAPPED_HOW``)."""
        return any(r.how in MAPPED_HOW for r in self.loaded)

    @property
    def ok(self) -> bool:
        """Whether applying the plan would succeed under its policy."""
        return self.problem() is None

    def problem(self) -> Exception | None:
        """The error applying this plan would raise, or ``None``."""
        if self.nonfinite:
            return NonFiniteWeightsError(
                f"{len(self.nonfinite)} tensor(s) in {self.source.uri} "
                + ("hold NaN or infinite values (or overflow the model's dtype): " if self.finite_checked
                   else "hold values that overflow the model's dtype: ") + ", ".join(self.nonfinite[:10]),
                hint=NONFINITE_HINT,
            )
        if self.uncastable:
            first = self.uncastable[0]
            more = f" (and {len(self.uncastable) - 1} more)" if len(self.uncastable) > 1 else ""
            return DtypeError(
                f"checkpoint tensor {first.source_key!r} is {first.source_dtype} but the model expects "
                f"{first.target_dtype} ({first.target_key}): {first.reason}{more}",
                hint=first.hint,
            )
        if self.mismatched:
            return self._mismatch_error()
        if not self.loaded and self.excluded:
            return StrictLoadError(
                f"include/exclude left out every one of the {self.excluded} tensors of {self.source.uri} that "
                "matched the model: nothing would be loaded",
                missing=self.missing, unexpected=self.unexpected,
                hint="check the patterns: globs or module paths on checkpoint or model keys (include=['backbone'], "
                "exclude=['*.fc.*']); `weightport plan` shows both key sets",
            )
        if not self.loaded:
            return StrictLoadError(
                f"nothing from {self.source.uri} fits the model: 0 of {len(self.unexpected)} checkpoint tensors "
                "matched a target key",
                missing=self.missing, unexpected=self.unexpected,
                hint="check that the checkpoint is for this architecture; `weightport plan` shows both key sets, "
                "and into='submodule' or rename={regex: replacement} can map them",
            )
        if self.min_coverage is not None and self.coverage < self.min_coverage:
            return StrictLoadError(
                f"only {self.coverage:.1%} of the model's parameters come from {self.source.uri}, "
                f"below min_coverage={self.min_coverage:.1%}",
                missing=self.missing, unexpected=self.unexpected,
                hint="check the mapping with `weightport plan`, or lower min_coverage",
            )
        if self.reinit_share > MAX_UNNAMED_REINIT_SHARE:
            keys = [r.key for r in self.reinitialized]
            return StrictLoadError(
                f"re-initialising {self.reinit_share:.1%} of the model's parameters as its head "
                f"({', '.join(fold_keys(keys, limit=6))}) is more than {MAX_UNNAMED_REINIT_SHARE:.0%}: "
                "weightport does not re-initialise that much of a network without being told",
                missing=self.missing, unexpected=self.unexpected,
                hint=f"if that is what you want, name it: reinit={sorted({k.rpartition('.')[0] for k in keys})!r}",
            )
        if self.strict and self.missing:
            return StrictLoadError(
                f"{len(self.missing)} model weight(s) are not in {self.source.uri}: "
                + ", ".join(fold_keys(self.missing, limit=8)),
                missing=self.missing, unexpected=self.unexpected,
                hint="pass strict=False to keep their current values, or reinit=[...] to re-initialise them "
                "on purpose",
            )
        unexpected_weights = [k for k in self.unexpected if not is_training_state(k)]
        if self.strict and unexpected_weights:
            return StrictLoadError(
                f"{len(unexpected_weights)} checkpoint weight(s) in {self.source.uri} go nowhere in the model: "
                + ", ".join(fold_keys(unexpected_weights, limit=8)),
                missing=self.missing, unexpected=self.unexpected,
                hint="leave them out on purpose with exclude=[...] (checkpoint keys or module paths), map them with "
                "rename={regex: replacement}, or pass strict=False to ignore them",
            )
        return None

    def _mismatch_error(self) -> Exception:
        """Shapes that differ in a few modules are a changed layer; in many, another architecture."""
        pairs = [(m.source_key, m.target_key, m.source_shape, m.target_shape) for m in self.mismatched]
        modules = list(dict.fromkeys(parent(m.target_key) or m.target_key for m in self.mismatched))
        if len(modules) >= ARCHITECTURE_MISMATCH_MODULES:
            shown = "; ".join(f"{t}: {tuple(a)} in the checkpoint, {tuple(b)} in the model" for _, t, a, b in pairs[:3])
            return ArchitectureMismatchError(
                f"{self.source.uri} is for another architecture: {len(pairs)} tensors in {len(modules)} modules have "
                f"other shapes ({shown}, …)"
                + (f", and {len(self.unexpected)} checkpoint tensors have no place in the model" if self.unexpected
                   else ""),
                hint="load a checkpoint of this architecture, or build the model the checkpoint was written for; "
                f"`weightport inspect {self.source.uri}` shows what it holds",
            )
        # reinit= replaces the default head, so the hint names the head too when it is re-initialised.
        modules += [p for p in dict.fromkeys(parent(r.key) for r in self.reinitialized) if p not in modules]
        return ShapeMismatchError(
            pairs,
            hint=f"re-initialise them on purpose with reinit={modules!r}, or build the model with the checkpoint's "
            "shapes (strict=False does not load a tensor of another shape)",
        )

    def check(self) -> None:
        """Raise the error applying this plan would raise, if any."""
        problem = self.problem()
        if problem is not None:
            raise problem

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable view of the plan."""
        return {
            "source": self.source.to_dict(),
            "into": self.into,
            "strict": self.strict,
            "ok": self.ok,
            "coverage": round(self.coverage, 6),
            "counts": self.counts(),
            "loaded": [r.to_dict() for r in self.loaded],
            "missing": list(self.missing),
            "unexpected": list(self.unexpected),
            "reinitialized": [r.key for r in self.reinitialized],
            "reinitialized_reasons": {r.key: r.reason for r in self.reinitialized},
            "reinitialized_replaced": {r.key: r.replaced for r in self.reinitialized if r.replaced},
            "excluded": self.excluded,
            "nonfinite": list(self.nonfinite),
            "finite_checked": self.finite_checked,
            "uncastable": [asdict(u) for u in self.uncastable],
            "mismatched": [
                {"source_key": m.source_key, "target_key": m.target_key,
                 "source_shape": list(m.source_shape), "target_shape": list(m.target_shape)}
                for m in self.mismatched
            ],
            "notes": list(self.notes),
            "dropped_head": list(self.dropped_head),
        }

    def to_json(self, **kwargs: Any) -> str:
        """The plan as JSON text."""
        return json.dumps(self.to_dict(), **{"indent": 2, **kwargs})

    def counts(self) -> dict[str, int]:
        """How many tensors were loaded, found each way, re-initialised, missing, unexpected."""
        how = Counter(r.how for r in self.loaded)
        return {
            "loaded": len(self.loaded),
            **{f"by_{k}": v for k, v in sorted(how.items())},
            "reinitialized": len(self.reinitialized),
            "missing": len(self.missing),
            "unexpected": len(self.unexpected),
            "mismatched": len(self.mismatched),
        }

    def rename_table(self) -> dict[str, str]:
        """``{source_key: target_key}`` for every loaded tensor whose key changed."""
        return {r.source_key: r.target_key for r in self.loaded if r.source_key != r.target_key}

    def save_rules(self, path: str) -> None:
        """Write the mapping as the fewest rename rules that reproduce it, reusable with ``rename=path``.

        Prefix rules when prefixes explain the mapping (``^model\\.backbone\\.`` → ``""``), else one
        exact rule per renamed key; either way a later load with ``rename=path, match="exact"``
        maps every tensor as this plan did and renames nothing else.
        """
        from weightport.layout.rename import smallest_rules

        table = self.rename_table()
        unchanged = [r.source_key for r in self.loaded if r.source_key == r.target_key] + list(self.unexpected)
        with open(path, "w") as fh:
            json.dump({"source": self.source.uri, "rename": smallest_rules(table, unchanged)}, fh, indent=2)

    def _title(self) -> str:
        return "plan"

    def __str__(self) -> str:
        return "\n".join(self._lines())

    def _lines(self) -> list[str]:
        src = self.source
        digest = f" sha256 {src.sha256[:12]}…" if src.sha256 else ""
        size = f" {format_bytes(src.bytes)}" if src.bytes else ""
        lines = [
            f"weightport {self._title()}: {src.uri} ({src.format or '?'}{size}{digest})"
            + (f" into {self.into!r}" if self.into else ""),
        ]
        if src.resolved_by:
            lines.append(f"  resolved: {src.resolved_by}")
        c = self.counts()
        how = ", ".join(f"{k[3:]} {v}" for k, v in c.items() if k.startswith("by_"))
        lines.append(
            f"  loaded {c['loaded']} tensors ({how}); re-initialised {c['reinitialized']}; missing {c['missing']}; "
            f"unexpected {c['unexpected']}; coverage {self.coverage:.1%}"
            + ("" if self.ok else "  [WOULD FAIL]")
        )
        lines += _group("renamed", _op_groups(self.loaded, lambda r: r.how in {"prefix", "rename", "layout"}))
        structural = [r for r in self.loaded if r.how == "structural"]
        if structural:
            low = min(r.confidence or 0 for r in structural)
            lines.append(f"  structurally aligned: {len(structural)} tensors (lowest confidence {low:.2f})")
        lines += _group("adapted", _op_groups(self.loaded, lambda r: True, adapted_only=True))
        if self.reinitialized:
            reasons = Counter(r.reason for r in self.reinitialized)
            for reason, _ in reasons.most_common():
                keys = [r.key for r in self.reinitialized if r.reason == reason]
                lines.append(f"  re-initialised ({reason}): " + ", ".join(fold_keys(keys, limit=6)))
        if self.dropped_head:
            lines.append("  left out (the checkpoint's classification layer; the model's head is new or absent): "
                         + ", ".join(fold_keys(self.dropped_head, limit=4)))
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected)):
            if keys:
                lines.append(f"  {label}: " + ", ".join(fold_keys(keys, limit=8)))
        for m in self.mismatched[:10]:
            lines.append(f"  shape mismatch: {m.target_key} <- {m.source_key}: {m.source_shape} vs {m.target_shape}")
        lines += [f"  note: {n}" for n in self.notes]
        return lines


def _op_groups(records: list[TensorRecord], keep: Callable[[TensorRecord], bool],
               adapted_only: bool = False) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for r in records:
        if not keep(r):
            continue
        ops = [o for o in r.ops if _is_adaptation(o) == adapted_only]
        for op in ops:
            # The explanation in a trailing "(...)" may differ per tensor; what was done does not.
            label = _TRAILING_DETAIL.sub("", op) if adapted_only else op
            groups.setdefault(label, []).append(r.target_key)
    return groups


_TRAILING_DETAIL = re.compile(r"\s\([^()]*\)$")


def _is_adaptation(op: str) -> bool:
    return not op.startswith(("strip", "prefix", "add", "rename", "layout", "structural"))


#: Lines one report section shows before the rest are folded into one.
GROUP_LINES = 6


def _group(title: str, groups: dict[str, list[str]]) -> list[str]:
    lines = [f"  {title}: {label} ({len(keys)} tensors)" for label, keys in groups.items()]
    if len(lines) <= GROUP_LINES:
        return lines
    rest = list(groups.values())[GROUP_LINES - 1:]
    return lines[:GROUP_LINES - 1] + [f"  {title}: … {len(rest)} more rules ({sum(map(len, rest))} tensors)"]


#: How a load filled the module: ``copy`` into an existing module (``load_state_dict``), ``assign``
#: (the fast path: a model built on the meta device, checkpoint tensors placed without a copy), or
#: ``sharded`` (DTensor parameters, each rank reading its shards; ``LoadReport.distributed`` has the ranks).
LoadPath = Literal["copy", "assign", "sharded"]


@dataclass
class LoadReport(LoadPlan):
    """What a load did: the plan it applied, plus how it went.

    Attributes:
        timings: Seconds per stage (``fetch``, ``read``, ``plan``, ``apply``, ``total``; from
            ``from_pretrained`` also ``init_config``: reading the source's own init arguments, which
            for a Lightning checkpoint is the one read of the file that the load then reuses).
        path: How the module was filled: ``"copy"``, ``"assign"`` or ``"sharded"`` (see :data:`LoadPath`).
        fallback_reason: Why the fast path was not taken when it was asked for (``path`` is then ``"copy"``).
        verification: The output comparison with the source architecture, when ``verify`` was asked for.
        distributed: For a sharded load, this rank's ``rank``, ``world_size``, ``bytes_read`` of the
            ``bytes_total`` it loads, and how many tensors were made each way (``how``).
        init: For a model ``from_pretrained`` built: each init argument, its value and where it came
            from (``argument``, ``default``, ``config.json``, ``checkpoint hyper_parameters``).
    """

    timings: dict[str, float] = field(default_factory=dict)
    path: LoadPath = "copy"
    fallback_reason: str | None = None
    verification: dict[str, Any] | None = None
    distributed: dict[str, Any] | None = None
    init: dict[str, dict[str, Any]] | None = None

    @classmethod
    def from_plan(cls, plan: LoadPlan, *, timings: dict[str, float], path: LoadPath,
                  fallback_reason: str | None = None) -> LoadReport:
        """The report of a load that carried out ``plan``."""
        planned = {f.name: getattr(plan, f.name) for f in fields(LoadPlan)}
        return cls(**planned, timings=timings, path=path, fallback_reason=fallback_reason)

    def _title(self) -> str:
        return "report"

    def _lines(self) -> list[str]:
        lines = super()._lines()
        total = self.timings.get("total")
        path = f"{self.path} (fast path unavailable: {self.fallback_reason})" if self.fallback_reason else self.path
        lines.insert(1, f"  path: {path}" + (f"; {total:.2f}s" if total is not None else "")
                     + ("; every value checked finite" if self.finite_checked else "; NaN/Inf not checked"))
        if self.init:
            lines.insert(2, "  init: " + ", ".join(f"{k}={v['value']!r} ({v['from']})" for k, v in self.init.items()))
        if self.verification is not None:
            v = self.verification
            lines.append(f"  verified: {v['compared']} within {v['max_abs_diff']:.3g} of the source architecture "
                         f"(tolerance {v['tolerance']:.3g}, input {tuple(v['input_shape'])})")
        return lines

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["timings"] = {k: round(v, 6) for k, v in self.timings.items()}
        out["path"] = self.path
        if self.fallback_reason is not None:
            out["fallback_reason"] = self.fallback_reason
        if self.verification is not None:
            out["verification"] = self.verification
        if self.distributed is not None:
            out["distributed"] = self.distributed
        if self.init is not None:
            out["init"] = self.init
        return out

    def summary(self) -> dict[str, Any]:
        """A short dict for provenance: source, sha256, counts, coverage."""
        return {"source": self.source.to_dict(), "counts": self.counts(), "coverage": round(self.coverage, 6),
                "reinitialized": [r.key for r in self.reinitialized], "into": self.into}
