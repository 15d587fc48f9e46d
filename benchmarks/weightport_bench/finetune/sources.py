"""Which weights each run starts from, and the architecture they fit.

A source string is anything ``from_pretrained`` takes (an alias, ``hf:…``, ``timm:…``, a path, a
URL) or ``scratch`` (random init). Weights fit one architecture: an alias names none, so the
benchmark keeps the architecture of the built-in sources here, ``--source-arch SOURCE=ARCH`` names
it for others, and everything else (``scratch`` included) gets ``--arch``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from weightport.errors import UsageError

#: The source name that means "random init, no weights loaded"; ``scratch:ARCH`` picks the architecture.
SCRATCH = "scratch"

#: Architectures (timm names) of the sources compared by default; each file fits only its own.
ARCHITECTURES: dict[str, str] = {
    "efficientnet_lite0": "tf_efficientnet_lite0",
    "efficientnet_lite1": "tf_efficientnet_lite1",
    "efficientnet_lite2": "tf_efficientnet_lite2",
}

#: What ``make demo`` compares: three real ImageNet sources that install from PyPI, and random init.
DEFAULT_SOURCES: tuple[str, ...] = (*ARCHITECTURES, SCRATCH)


@dataclass(frozen=True)
class SourceSpec:
    """One compared source.

    Attributes:
        label: How tables, plots and files name it (the string the user gave).
        source: What ``from_pretrained`` loads; ``None`` for random init.
        arch: The backbone architecture it is loaded into (``None`` for a user's own model).
    """

    label: str
    source: str | None
    arch: str | None

    @property
    def is_scratch(self) -> bool:
        """Random init: nothing is loaded."""
        return self.source is None


def parse_source_archs(pairs: Iterable[str]) -> dict[str, str]:
    """``["SOURCE=ARCH", …]`` as a mapping (split at the last ``=``: a URL may hold one).

    Raises:
        UsageError: An entry without ``=``.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        source, sep, arch = pair.rpartition("=")
        if not sep or not source or not arch:
            raise UsageError(f"--source-arch {pair!r} is not SOURCE=ARCH", hint="e.g. --source-arch ./my.ckpt=resnet18")
        out[source] = arch
    return out


def source_specs(
    sources: Iterable[str], default_arch: str | None, source_archs: Mapping[str, str] | None = None
) -> list[SourceSpec]:
    """The specs of ``sources``, in order.

    Args:
        sources: Source strings and/or ``scratch`` / ``scratch:ARCH``.
        default_arch: ``--arch``: the architecture of sources with no other (``None``: a user's model).
        source_archs: ``--source-arch`` entries, which win over :data:`ARCHITECTURES`.

    Raises:
        UsageError: No sources, or one given twice.
    """
    specs: list[SourceSpec] = []
    archs = dict(source_archs or {})
    for text in sources:
        if any(s.label == text for s in specs):
            raise UsageError(f"source {text!r} is given twice", hint="name each source once")
        name, sep, arch = text.partition(":")
        if name == SCRATCH:
            specs.append(SourceSpec(text, None, (arch if sep else None) or default_arch))
        else:
            chosen = archs.get(text) or (ARCHITECTURES.get(text) if default_arch is not None else None)
            specs.append(SourceSpec(text, text, chosen or default_arch))
    if not specs:
        raise UsageError("no sources to compare", hint=f"pass --source SOURCE (or {SCRATCH})")
    return specs


def baseline_of(spec: SourceSpec, specs: Iterable[SourceSpec]) -> SourceSpec | None:
    """The random-init run a source is compared with: scratch of its own architecture, else the first."""
    scratch = [s for s in specs if s.is_scratch]
    same = [s for s in scratch if s.arch == spec.arch]
    return (same or scratch or [None])[0]
