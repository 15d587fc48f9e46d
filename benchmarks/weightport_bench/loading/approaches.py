"""The ways of loading a checkpoint that the benchmark compares, one function per approach.

Each approach runs in its own fresh process (see :mod:`weightport_bench.loading.child`). This module
imports nothing heavy itself: an approach names the modules it needs in ``imports`` (the child
imports them first, and times that apart), and its function returns what it loaded. The
timm model is what every model approach returns, so that its ``state_dict`` keys are timm's.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from weightport.errors import DuplicateRegistrationError, UsageError

if TYPE_CHECKING:
    from torch import nn

FORMATS: tuple[str, ...] = ("safetensors", "pth", "ckpt")
PICKLES = frozenset({"pth", "ckpt"})
ALL = frozenset(FORMATS)

# Prefix under which a Lightning module holding the network as ``self.model`` stores its weights.
LIGHTNING_PREFIX = "model."


@dataclass(frozen=True)
class Task:
    """One load to do: an architecture and the fixture files written for it."""

    arch: str
    fmt: str | None
    path: Path | None  # the checkpoint file in ``fmt``
    hub_dir: Path | None = None  # the huggingface_hub directory (model.safetensors + config.json)

    @property
    def file(self) -> Path:
        """The checkpoint file.

        Raises:
            UsageError: The task has none (an approach that reads no file was given one to read).
        """
        if self.path is None:
            raise UsageError(f"no checkpoint file for {self.arch}", hint="run this approach with a format")
        return self.path

    @property
    def hub(self) -> Path:
        """The huggingface_hub directory.

        Raises:
            UsageError: The task has none.
        """
        if self.hub_dir is None:
            raise UsageError(f"no huggingface_hub directory for {self.arch}", hint="write the fixture first")
        return self.hub_dir


@dataclass(frozen=True)
class Loaded:
    """What an approach loaded, with notes for the report (which path weightport took, its timings)."""

    result: Any
    notes: dict[str, Any]


@dataclass(frozen=True)
class Approach:
    """A way of loading weights, as the benchmark runs it."""

    name: str
    label: str
    group: str  # "baseline", "weightport" or "floor"
    formats: frozenset[str] | None  # None: the approach never reads a checkpoint; run once per model
    imports: tuple[str, ...]
    check: str  # a key of checks.CHECKS
    load: Callable[[Task], Any]  # returns the loaded result, or a Loaded with notes
    # Run in the child before its clock starts: the task to load instead (a new copy of the file,
    # the file dropped from the page cache), and what to clean up after.
    prepare: Callable[[Task], tuple[Task, Callable[[], None]]] | None = None
    base: str | None = None  # the warm approach this is a variant of (its ratios are to that one's floor)


APPROACHES: dict[str, Approach] = {}

_TORCH_TIMM = ("torch", "timm")


def approach(name: str, *, label: str, group: str = "baseline", formats: frozenset[str] | None = ALL,
             imports: tuple[str, ...] = _TORCH_TIMM, check: str = "model") -> Callable[[Callable[[Task], Any]], Any]:
    """Register the decorated function as the approach ``name`` (table order is registration order)."""

    def register(fn: Callable[[Task], Any]) -> Callable[[Task], Any]:
        _add(Approach(name, label, group, formats, imports, check, fn))
        return fn

    return register


def _add(app: Approach) -> None:
    if app.name in APPROACHES:
        raise DuplicateRegistrationError(f"loading approach {app.name!r} is already registered",
                                         hint="give the new approach another name")
    APPROACHES[app.name] = app


def new_copy(task: Task) -> tuple[Task, Callable[[], None]]:
    """A never-seen file: a fresh copy (new inode) of the checkpoint beside it, written and synced."""
    import os
    import shutil

    copy = task.file.with_name(f".new-{os.getpid()}-{task.file.name}")
    shutil.copyfile(task.file, copy)
    with copy.open("rb+") as fh:
        os.fsync(fh.fileno())
    return dataclasses.replace(task, path=copy), lambda: copy.unlink(missing_ok=True)


def drop_page_cache(task: Task) -> tuple[Task, Callable[[], None]]:
    """The checkpoint's pages dropped from the page cache (``posix_fadvise(DONTNEED)``), where the OS allows.

    Raises:
        UsageError: The OS has no ``posix_fadvise`` (the variant cannot be measured here).
    """
    import os

    if not hasattr(os, "posix_fadvise"):
        raise UsageError("posix_fadvise is not available on this OS", hint="run the warm approaches only")
    fd = os.open(task.file, os.O_RDONLY)
    try:
        os.fdatasync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return task, lambda: None


VARIANTS: dict[str, tuple[str, Callable[[Task], tuple[Task, Callable[[], None]]]]] = {
    "new-file": ("a never-seen copy of the file (new inode, page cache warm)", new_copy),
    "uncached": ("the file dropped from the page cache first (posix_fadvise DONTNEED)", drop_page_cache),
}


def variant(base: str, kind: str) -> None:
    """Register ``<base>-<kind>``: the approach ``base`` on a prepared file (see :data:`VARIANTS`)."""
    app = APPROACHES[base]
    what, prepare = VARIANTS[kind]
    _add(dataclasses.replace(app, name=f"{base}-{kind}", label=f"{app.label}, on {what}", prepare=prepare,
                             base=base))


def _build(arch: str) -> nn.Module:
    import timm

    return timm.create_model(arch, pretrained=False)


def _user_state_dict(obj: dict[str, Any]) -> dict[str, Any]:
    """The glue users write by hand: unwrap a Lightning checkpoint and strip its attribute prefix."""
    if "state_dict" not in obj:
        return obj
    return {k.removeprefix(LIGHTNING_PREFIX): v for k, v in obj["state_dict"].items()}


def _load_strict(model: nn.Module, state: dict[str, Any]) -> nn.Module:
    model.load_state_dict(state, strict=True)
    return model


@approach("naive", label="build (random init) + torch.load + load_state_dict", formats=PICKLES)
def load_naive(task: Task) -> nn.Module:
    import torch

    model = _build(task.arch)
    return _load_strict(model, _user_state_dict(torch.load(task.file, map_location="cpu")))


@approach("mmap", label="build + torch.load(mmap=True, weights_only=True) + load_state_dict", formats=PICKLES)
def load_mmap(task: Task) -> nn.Module:
    import torch

    model = _build(task.arch)
    obj = torch.load(task.file, map_location="cpu", mmap=True, weights_only=True)
    return _load_strict(model, _user_state_dict(obj))


@approach("safetensors", label="build + safetensors load_file + load_state_dict", formats=frozenset({"safetensors"}),
          imports=(*_TORCH_TIMM, "safetensors.torch"))
def load_safetensors(task: Task) -> nn.Module:
    from safetensors.torch import load_file

    model = _build(task.arch)
    return _load_strict(model, load_file(str(task.file)))


@approach("timm", label="timm.create_model(pretrained=True, pretrained_cfg_overlay=dict(file=...))")
def load_timm(task: Task) -> nn.Module:
    import timm

    return timm.create_model(task.arch, pretrained=True, pretrained_cfg_overlay={"file": str(task.file)})


@approach("hand-written", label="hand-written fast path: meta build + safe_open / torch.load(mmap=True) + "
          "load_state_dict(assign=True)", imports=(*_TORCH_TIMM, "safetensors"))
def load_hand_written(task: Task) -> nn.Module:
    """The floor a loader can reach: no init, no copy, no checks (what weightport is measured against)."""
    import torch

    with torch.device("meta"):
        model = _build(task.arch)
    if task.fmt == "safetensors":
        from safetensors import safe_open

        with safe_open(str(task.file), "pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    else:
        state = _user_state_dict(torch.load(task.file, map_location="cpu", mmap=True, weights_only=True))
    model.load_state_dict(state, strict=True, assign=True)
    return model


def _hub_class() -> Any:
    import timm
    from huggingface_hub import PyTorchModelHubMixin
    from torch import nn

    class HubNet(nn.Module, PyTorchModelHubMixin):  # type: ignore[misc]
        def __init__(self, arch: str) -> None:
            super().__init__()
            self.model = timm.create_model(arch, pretrained=False)

    return HubNet


@approach("hf-mixin", label="huggingface_hub PyTorchModelHubMixin.from_pretrained(dir)",
          formats=frozenset({"safetensors"}), imports=(*_TORCH_TIMM, "huggingface_hub"))
def load_hf_mixin(task: Task) -> nn.Module:
    hub = _hub_class().from_pretrained(str(task.hub))
    return hub.model


def _report_notes(report: Any) -> dict[str, Any]:
    return {"path": getattr(report, "path", None), "timings": dict(getattr(report, "timings", {}) or {})}


def _wrapper_class() -> Any:
    import timm
    from torch import nn

    from weightport.mixin import PretrainedMixin

    class Wrapper(PretrainedMixin, nn.Module):
        def __init__(self, arch: str) -> None:
            super().__init__()
            self.model = timm.create_model(arch, pretrained=False)

    return Wrapper


@approach("weightport", label="weightport: Wrapper.from_pretrained(path)", group="weightport",
          imports=(*_TORCH_TIMM, "weightport.mixin", "weightport.loading.api"))
def load_weightport(task: Task) -> Loaded:
    wrapper = _wrapper_class().from_pretrained(task.file, arch=task.arch)
    return Loaded(wrapper.model, _report_notes(wrapper.weightport_report))


@approach("weightport-into-existing", label="weightport: build + load_weights(model, path)", group="weightport",
          imports=(*_TORCH_TIMM, "weightport.loading.api"))
def load_weightport_existing(task: Task) -> Loaded:
    from weightport.loading.api import load_weights

    model = _build(task.arch)
    return Loaded(model, _report_notes(load_weights(model, task.file)))


@approach("read-bytes", label="floor: read the file's bytes into memory", group="floor", imports=(), check="bytes")
def read_bytes(task: Task) -> bytearray:
    path = task.file
    buf = bytearray(path.stat().st_size)
    with path.open("rb", buffering=0) as f:
        view = memoryview(buf)
        done = 0
        while done < len(buf):
            n = f.readinto(view[done:])
            if not n:
                break
            done += n
    return buf if done == len(buf) else buf[:done]


@approach("meta-build", label="floor: build the model on the meta device", group="floor", formats=None,
          check="meta")
def meta_build(task: Task) -> nn.Module:
    import torch

    with torch.device("meta"):
        return _build(task.arch)


variant("weightport", "new-file")
variant("hand-written", "uncached")
variant("weightport", "uncached")

FLOORS: tuple[str, ...] = ("read-bytes", "meta-build")


def get(name: str) -> Approach:
    """The approach called ``name``.

    Raises:
        UsageError: No such approach; the hint lists those that exist.
    """
    try:
        return APPROACHES[name]
    except KeyError:
        raise UsageError(f"unknown loading approach {name!r}", hint=f"use one of: {', '.join(APPROACHES)}") from None
