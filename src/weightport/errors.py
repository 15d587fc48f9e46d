"""Every error weightport raises.

All of them derive from :class:`WeightportError`, and each also inherits the built-in exception a
generic handler would expect (a missing checkpoint is a :class:`FileNotFoundError`, a bad shape a
:class:`ValueError`, ...). Each message says what happened and, in ``hint``, what to do about it.
The original exception, when there is one, is kept as ``__cause__``.
"""

from __future__ import annotations

from weightport.text import listing


class WeightportError(Exception):
    """Root of every error weightport raises.

    Args:
        message: What happened, naming the file, source or key concerned.
        hint: What the user can do about it (an option to pass, a command to run).
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}\n  hint: {self.hint}"

    def __reduce__(self):  # keep errors picklable across processes (DDP workers, subprocesses)
        return (_rebuild, (type(self), self.message, self.hint, dict(self.__dict__)))


def _rebuild(cls: type[WeightportError], message: str, hint: str | None, state: dict) -> WeightportError:
    err = cls.__new__(cls)
    Exception.__init__(err, message)
    err.__dict__.update(state)
    return err


_listing = listing  # the one "… and N more" helper, under the name modules used before weightport.text


# --- sources and the registry -------------------------------------------------------------------


class InvalidSourceError(WeightportError, ValueError):
    """A source string that cannot be parsed."""


class UnknownSourceError(WeightportError, LookupError):
    """A name that no alias, scheme or library knows."""


class SourceNotFoundError(WeightportError, FileNotFoundError):
    """The file or directory a source points to does not exist."""


class DuplicateRegistrationError(WeightportError, ValueError):
    """A name or scheme registered twice without ``override=True``."""


class MissingDependencyError(WeightportError, ImportError):
    """An optional package a source or feature needs is not installed."""


class PathTraversalError(WeightportError, ValueError):
    """A path, filename or revision that would reach outside its root."""


# --- fetching and the cache -----------------------------------------------------------------------


class DownloadError(WeightportError, ConnectionError):
    """A download failed: server unreachable, HTTP error, or the connection broke."""


class DownloadTimeoutError(DownloadError, TimeoutError):
    """The server did not answer, or stopped sending, within the timeout."""


class IncompleteDownloadError(DownloadError):
    """The server sent fewer bytes than it announced."""


class IntegrityError(WeightportError, ValueError):
    """A file's sha256 or size differs from the pinned or recorded one."""


class OfflineCacheMissError(WeightportError, FileNotFoundError):
    """Offline mode is on and the source is not in the cache."""


class CacheNotWritableError(WeightportError, PermissionError):
    """The cache directory cannot be written."""


class DiskFullError(WeightportError, OSError):
    """There was not enough space to store a download."""


class LockTimeoutError(WeightportError, TimeoutError):
    """Another process held the download lock for longer than the allowed wait."""


class RemoteFileNotFoundError(DownloadError, SourceNotFoundError):
    """The server answered that the file does not exist (HTTP 404 or 410): a download error that
    is also a missing source (``FileNotFoundError``), so either handler catches it."""


# --- reading checkpoints ---------------------------------------------------------------------------


class UnsafeCheckpointError(WeightportError, ValueError):
    """A pickle that wants to import or call code outside the safe allowlist."""


class CorruptCheckpointError(WeightportError, ValueError):
    """A checkpoint that is truncated, empty or internally inconsistent."""


class UnsupportedFormatError(WeightportError, ValueError):
    """A file in no format weightport reads."""


class UnsupportedTensorError(UnsupportedFormatError):
    """A tensor that is not a plain dense CPU tensor (sparse, quantized, nested, meta, a subclass...)."""


class FormatMismatchError(WeightportError, ValueError):
    """A file whose bytes say one format and whose extension says another."""


class ResourceLimitError(WeightportError, ValueError):
    """A checkpoint that declares sizes far beyond what it stores or what is allowed."""


class PickledModelError(UnsafeCheckpointError, UnsupportedFormatError):
    """A checkpoint that stores a model object or program (a pickled ``nn.Module``, a TorchScript
    archive) instead of tensors: reading it would mean running its code."""


class AmbiguousCheckpointError(WeightportError, LookupError):
    """A directory that holds more than one checkpoint and no rule to choose between them."""


# --- mapping and loading ---------------------------------------------------------------------------


class ShapeMismatchError(WeightportError, ValueError):
    """Checkpoint tensors whose shapes do not fit their target and no rule adapts."""

    def __init__(
        self, mismatches: list[tuple[str, str, tuple[int, ...], tuple[int, ...]]], *, hint: str | None = None
    ) -> None:
        self.mismatches = mismatches
        rows = (f"{t} <- {s}: checkpoint {tuple(a)} vs model {tuple(b)}" for s, t, a, b in mismatches)
        super().__init__(
            f"{len(mismatches)} checkpoint tensor(s) do not fit the model's shape:\n  " + listing(rows, 20, sep="\n  "),
            hint=hint,
        )


class StrictLoadError(WeightportError, RuntimeError):
    """A strict load that would leave target weights unloaded, or a coverage policy that failed."""

    def __init__(self, message: str, *, missing: list[str], unexpected: list[str], hint: str | None = None) -> None:
        self.missing = missing
        self.unexpected = unexpected
        super().__init__(message, hint=hint)


class DtypeError(WeightportError, TypeError):
    """A cast that would change what the numbers mean (e.g. integer weights into a float model)."""


class NonFiniteWeightsError(WeightportError, ValueError):
    """Checkpoint tensors holding NaN or infinite values."""


class AmbiguousMappingError(WeightportError, ValueError):
    """More than one equally plausible correspondence between checkpoint and model tensors."""


class ArchitectureMismatchError(WeightportError, ValueError):
    """Checkpoint and model whose module structures differ, so no correspondence can be trusted."""


class UnknownLayoutError(WeightportError, LookupError):
    """A layout rule set name that is not registered."""


class LayoutRuleError(WeightportError, ValueError):
    """A layout rule that cannot be applied to a checkpoint (two keys renamed onto one, a fused part missing)."""


class AdaptError(WeightportError, ValueError):
    """A fitter that applies but lacks what it needs (e.g. the grid of a non-square position embedding)."""


class UnknownClassError(WeightportError, LookupError):
    """A class name asked for that the checkpoint's head does not know."""


class VerificationError(WeightportError, RuntimeError):
    """The loaded model's outputs differ from the source model's beyond the tolerance."""


class ShardingError(WeightportError, ValueError):
    """A sharded parameter whose placement a load cannot fill (e.g. ``Partial``), whose shard disagrees, or a
    check a single-process load would make that a sharded load cannot (``verify="auto"``)."""


class RankMismatchError(WeightportError, RuntimeError):
    """The ranks of a distributed load saw different things (another file, another sha256)."""


class UsageError(WeightportError, TypeError):
    """An API used the wrong way (e.g. a classmethod called on an instance)."""


class InvalidOptionError(UsageError, ValueError):
    """An option weightport does not have (a typo), or a value an option cannot take (``strict="no"``)."""


class SaveError(WeightportError, ValueError):
    """A model that ``save_pretrained`` cannot write so that ``from_pretrained`` rebuilds it."""


__all__ = [name for name, obj in list(globals().items()) if isinstance(obj, type) and issubclass(obj, Exception)]
