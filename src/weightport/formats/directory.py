"""Find the one checkpoint inside a directory (a saved model folder, a hub snapshot)."""

from __future__ import annotations

from pathlib import Path

from weightport.errors import AmbiguousCheckpointError, SourceNotFoundError
from weightport.text import listing

#: File names tried first, in order: what ``save_pretrained`` and the hub conventionally write.
PREFERRED: tuple[str, ...] = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
#: Suffixes of files that may be the checkpoint when no preferred name is there.
CANDIDATE_SUFFIXES: tuple[str, ...] = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".npz")
INDEX_SUFFIXES: tuple[str, ...] = (".safetensors.index.json", ".bin.index.json")


def find_checkpoint(directory: Path) -> Path:
    """The checkpoint file in ``directory``.

    Preference: ``model.safetensors``, then a shard index, then the single file with a checkpoint suffix.

    Raises:
        SourceNotFoundError: The directory holds no checkpoint.
        AmbiguousCheckpointError: Several candidates and no rule to choose (listed in the message).
    """
    for name in PREFERRED:
        if (directory / name).is_file():
            return directory / name
    files = sorted(p for p in directory.iterdir() if p.is_file() and not p.name.startswith("."))
    indexes = [p for p in files if p.name.endswith(INDEX_SUFFIXES)]
    if len(indexes) == 1:
        return indexes[0]
    candidates = indexes or [p for p in files if p.suffix.lower() in CANDIDATE_SUFFIXES]
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise SourceNotFoundError(
            f"{directory}: no checkpoint in this directory (looked for {', '.join(PREFERRED)} or a file ending "
            f"in {', '.join(CANDIDATE_SUFFIXES)})",
            hint="point at the checkpoint file itself",
        )
    raise AmbiguousCheckpointError(
        f"{directory}: {len(candidates)} candidate checkpoints: {listing(p.name for p in candidates)}",
        hint="point at the file you mean instead of the directory",
    )
