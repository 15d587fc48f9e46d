"""Validation of Hugging Face hub repo ids, revisions and file names, before any I/O.

Hub names become URL parts and cache paths; a ``..`` or an absolute path in them could write or
read outside the cache, so anything outside a conservative character set is refused.
"""

from __future__ import annotations

import re

from weightport.errors import InvalidSourceError, PathTraversalError
from weightport.paths import confined_name

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.\-]{0,95}$")
_REVISION = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}|refs/(?:pr|convert)/[A-Za-z0-9_.\-]{1,64})$")
_SEGMENT = re.compile(r"^[A-Za-z0-9_.\-+=@()\[\], ]{1,255}$")


def check_repo_id(repo_id: str) -> str:
    """A hub repo id ``org/name``.

    Raises:
        PathTraversalError: It contains ``..``.
        InvalidSourceError: It is not of the form ``org/name``.
    """
    if ".." in repo_id:
        raise PathTraversalError(
            f"hub repository id {repo_id!r} contains '..'; expected ORG/NAME",
            hint="write hf:ORG/REPO[@REVISION][/FILE], e.g. hf:timm/resnet18.a1_in1k",
        )
    if not _REPO.match(repo_id):
        raise InvalidSourceError(
            f"bad hub repository id {repo_id!r}",
            hint="write hf:ORG/REPO[@REVISION][/FILE], e.g. hf:timm/resnet18.a1_in1k",
        )
    return repo_id


def check_revision(revision: str) -> str:
    """A branch, tag or commit name with no path tricks.

    Raises:
        PathTraversalError: Anything but letters, digits, ``_.-`` (or ``refs/pr/N``), or a ``..``.
    """
    if ".." in revision or not _REVISION.match(revision):
        raise PathTraversalError(
            f"hub revision {revision!r} is not a plain branch, tag or commit name",
            hint="use a commit hash, a tag or a branch name made of letters, digits, '_', '.', '-'",
        )
    return revision


def check_filename(filename: str) -> str:
    """A file path inside a hub repository (relative, ``/``-separated, no ``..``).

    Raises:
        PathTraversalError: Absolute, drive-lettered, backslashed, ``..`` or odd characters.
    """
    confined_name(filename, "hub file name", hint="name the file as it appears in the repository, e.g. "
                  "'model.safetensors' or 'sub/model.bin'")
    for segment in filename.split("/"):
        if segment in {"", ".", ".."} or not _SEGMENT.match(segment):
            raise PathTraversalError(
                f"hub file name {filename!r} has a bad part {segment!r}",
                hint="file names are relative paths of letters, digits and _.-+=@()[], without '..'",
            )
    return filename



def parse_hub_path(rest: str, uri: str) -> tuple[str, str | None, str | None]:
    """Split ``ORG/REPO[@REVISION][/FILE]`` into repo id, revision and file, each validated.

    Raises:
        PathTraversalError: A part could reach outside the repository or cache (the message names ``uri``).
        InvalidSourceError: Not of the form ``ORG/REPO[@REVISION][/FILE]``.
    """
    try:
        return _split_hub_path(rest, uri)
    except PathTraversalError as exc:  # name the whole source: the bad part alone is hard to place
        raise PathTraversalError(f"{uri}: {exc.message}", hint=exc.hint) from exc


def _split_hub_path(rest: str, uri: str) -> tuple[str, str | None, str | None]:
    org, sep, remainder = rest.strip().partition("/")
    if not sep:
        raise InvalidSourceError(f"bad hub source {uri!r}", hint="write hf:ORG/REPO[@REVISION][/FILE]")
    name, _, after = remainder.partition("/")
    revision = None
    if "@" in name:
        name, revision = name.split("@", 1)
        if revision.startswith("refs/") or revision == "refs":
            # refs/pr/N spans two more segments; the file, if any, follows them.
            parts = after.split("/", 2)
            revision = "/".join([revision, *parts[:2]])
            after = parts[2] if len(parts) > 2 else ""
        check_revision(revision)
    repo_id = check_repo_id(f"{org}/{name}")
    filename = check_filename(after) if after else None
    return repo_id, revision, filename
