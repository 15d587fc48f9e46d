"""The checkpoints the benchmark loads, written once per architecture into a work directory.

For each timm architecture: a randomly initialised model (buffers randomised too, so that a load
that skips them is caught) saved as ``weights.safetensors``, ``weights.pth`` (torch zip) and
``weights.ckpt`` (a Lightning checkpoint whose ``state_dict`` carries the ``model.`` attribute
prefix), plus ``hub/`` (``model.safetensors`` + ``config.json``) for huggingface_hub's
``PyTorchModelHubMixin``. ``expected.json``, written last, holds what the children verify against
and marks the fixture complete; a complete fixture is reused.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.errors import SourceNotFoundError
from weightport_bench.loading.approaches import LIGHTNING_PREFIX, Task
from weightport_bench.loading.checks import edge_crc, state_checksums

if TYPE_CHECKING:
    import torch

logger = logging.getLogger("weightport.bench")

MANIFEST = "expected.json"
HUB_DIR = "hub"
FILES: dict[str, str] = {"safetensors": "weights.safetensors", "pth": "weights.pth", "ckpt": "weights.ckpt"}
SEED = 1  # anything but torch's default seed, so that a forgotten load cannot match by chance
FIXTURE_VERSION = 1


@dataclass(frozen=True)
class Fixture:
    """The checkpoint files of one architecture and what a correct load of them gives."""

    arch: str
    root: Path
    manifest: dict[str, Any]

    def path(self, fmt: str) -> Path:
        """The checkpoint file in format ``fmt``."""
        return self.root / FILES[fmt]

    @property
    def hub_dir(self) -> Path:
        """The directory ``PyTorchModelHubMixin.from_pretrained`` loads."""
        return self.root / HUB_DIR

    def nbytes(self, fmt: str) -> int:
        """Size of the checkpoint file in format ``fmt``."""
        return int(self.manifest["files"][fmt]["bytes"])

    def task(self, fmt: str | None) -> Task:
        """The task of loading this fixture in format ``fmt`` (None: no file, e.g. a meta build)."""
        return Task(self.arch, fmt, None if fmt is None else self.path(fmt), self.hub_dir)

    def expected(self, fmt: str | None) -> dict[str, Any]:
        """What a child verifies against when loading format ``fmt``."""
        out = {k: self.manifest[k] for k in ("parameters", "checksums", "dtypes")}
        if fmt is not None:
            out.update(self.manifest["files"][fmt])
        return out


def _complete(root: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if manifest.get("version") != FIXTURE_VERSION:
        return None
    sizes = {fmt: root / name for fmt, name in FILES.items()} | {"hub": root / HUB_DIR / "model.safetensors"}
    for key, path in sizes.items():
        if not path.is_file() or path.stat().st_size != manifest["files"][key]["bytes"]:
            return None
    return manifest


def load_fixture(root: Path) -> Fixture:
    """The complete fixture written under ``root`` (a child process reads it to verify its load).

    Raises:
        SourceNotFoundError: ``root`` holds no complete fixture.
    """
    manifest = _complete(Path(root))
    if manifest is None:
        raise SourceNotFoundError(f"no complete benchmark fixture under {root}",
                                  hint="run the benchmark, which writes it first")
    return Fixture(manifest["arch"], Path(root), manifest)


def ensure_fixture(arch: str, workdir: Path) -> Fixture:
    """The fixture for ``arch`` under ``workdir``, written first when missing or incomplete."""
    root = Path(workdir) / arch
    manifest = _complete(root)
    if manifest is None:
        logger.info("writing checkpoints for %s under %s", arch, root)
        manifest = _write(arch, root)
    return Fixture(arch, root, manifest)


def _random_model_state(arch: str) -> tuple[dict[str, torch.Tensor], int]:
    """A randomly initialised ``arch``'s state dict (buffers randomised too) and its parameter count."""
    import timm
    import torch

    torch.manual_seed(SEED)
    model = timm.create_model(arch, pretrained=False)
    with torch.no_grad():
        for buffer in model.buffers():
            if buffer.is_floating_point():
                buffer.copy_(torch.rand_like(buffer) + 0.5)
            else:
                buffer.fill_(7)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    return state, sum(p.numel() for p in model.parameters())


def _replace(path: Path, write: Any) -> None:
    """Write through a temp file and rename, so an interrupted run never leaves a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(tmp)
    os.replace(tmp, path)


def _lightning_version() -> str:
    for dist in ("lightning", "pytorch-lightning"):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "2.0.0"


def _write(arch: str, root: Path) -> dict[str, Any]:
    import torch
    from safetensors.torch import save_file

    state, parameters = _random_model_state(arch)
    ckpt = {
        "epoch": 0,
        "global_step": 0,
        "pytorch-lightning_version": _lightning_version(),
        "state_dict": {LIGHTNING_PREFIX + k: v for k, v in state.items()},
        "hyper_parameters": {"arch": arch},
    }
    _replace(root / FILES["safetensors"], lambda p: save_file(state, str(p)))
    _replace(root / FILES["pth"], lambda p: torch.save(state, p))
    _replace(root / FILES["ckpt"], lambda p: torch.save(ckpt, p))
    hub = root / HUB_DIR
    hub_state = {LIGHTNING_PREFIX + k: v for k, v in state.items()}  # HubNet holds the timm model as .model
    _replace(hub / "model.safetensors", lambda p: save_file(hub_state, str(p)))
    _replace(hub / "config.json", lambda p: p.write_text(json.dumps({"arch": arch})))
    files = {fmt: root / name for fmt, name in FILES.items()} | {"hub": hub / "model.safetensors"}
    manifest = {
        "version": FIXTURE_VERSION,
        "arch": arch,
        "seed": SEED,
        "parameters": parameters,
        "tensors": len(state),
        "checksums": state_checksums(state),
        "dtypes": {k: str(v.dtype) for k, v in state.items()},
        "files": {key: {"bytes": path.stat().st_size, "edge_crc": edge_crc(path)} for key, path in files.items()},
    }
    _replace(root / MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=1)))
    return manifest
