"""Load into a module whose parameters are DTensors (FSDP2 ``fully_shard``, tensor parallel).

The plan is the one a single process makes: :func:`~weightport.loading.planner.build_plan` works on
the global shapes (``DTensor.shape``), so mapping, renames, fitters and the head rule are the same.
Then each rank makes only its own shards:

- a tensor loaded as it is: the rank's region of each dimension (torch's own placement rules,
  applied to an index range with ``distribute_tensor(..., src_data_rank=None)``, which communicates
  nothing) is cut from the memory-mapped checkpoint tensor with ``narrow``/``index_select`` — only
  those bytes are read, and a contiguous region of the right dtype is not even copied;
- a tensor a fitter changes: when the fitter works independently along every dimension this
  rank's shard cuts (:func:`register_slice_rule`: ``channels`` along output channels, ``reshape``
  along the dimensions it keeps, ``pos_embed`` along its leading dimension), the fitter runs on the
  rank's slice; otherwise the ranks at the mesh's origin make the whole tensor and
  ``distribute_tensor`` scatters it (the report lists which ran how);
- a re-initialised tensor (the head): every rank initialises the whole tensor from rank 0's RNG
  state, the way a single process would, and keeps its shard, so all ranks agree;
- a tensor the model does not shard (a buffer): every rank loads it whole.

Nothing is assigned until every rank has made all of its shards; a failure on any rank is raised on
every rank (:mod:`weightport.loading.distributed`), and the module is left untouched.
"""

from __future__ import annotations

import dataclasses
import logging
import mmap
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from weightport.errors import ShardingError, UsageError
from weightport.keys import parent
from weightport.loading import distributed
from weightport.loading.apply import all_finite
from weightport.loading.conversion import cached_fetch, conversion_for, options_for_converted
from weightport.loading.gc_pause import cyclic_gc_paused
from weightport.loading.options import LoadOptions
from weightport.loading.planner import Planned, Production, build_plan
from weightport.loading.source_io import read_source
from weightport.registry.table import Registry
from weightport.report import MAPPED_HOW, LoadPlan, LoadReport
from weightport.units import format_bytes

if TYPE_CHECKING:
    import torch
    from torch import nn

    from weightport.registry.resolve import SourceLike

logger = logging.getLogger("weightport")

#: ``(source shape, target shape) -> target dimensions`` along which a fitter works independently:
#: running it on a slice of the source along such a dimension gives the same slice of its output.
#: The page size, and ``madvise``'s advice to drop a range's mappings (Linux).
PAGE = mmap.PAGESIZE
MADV_DONTNEED = 4

SliceRule = Callable[[tuple[int, ...], tuple[int, ...]], frozenset[int]]


def kept_leading(source: tuple[int, ...], target: tuple[int, ...]) -> frozenset[int]:
    """The leading dimensions source and target share (``reshape`` only adds or drops size-1 dims)."""
    kept = set()
    for d, (a, b) in enumerate(zip(source, target)):
        if a != b:
            break
        kept.add(d)
    return frozenset(kept)


def first_dim(source: tuple[int, ...], target: tuple[int, ...]) -> frozenset[int]:
    """Dimension 0: ``channels`` works per output channel, ``pos_embed`` per leading index."""
    return frozenset({0})


#: Built-in slice rules, by fitter name (data; ``patch_embed`` and ``classes`` have none: they mix
#: or pick along the dimensions a shard cuts, so they run whole and are scattered).
BUILTIN_SLICE_RULES: dict[str, str] = {
    "reshape": "weightport.loading.sharded:kept_leading",
    "channels": "weightport.loading.sharded:first_dim",
    "pos_embed": "weightport.loading.sharded:first_dim",
}

SLICE_RULES: Registry[SliceRule] = Registry("slice rule", BUILTIN_SLICE_RULES)


def register_slice_rule(fitter: str, rule: SliceRule, *, override: bool = False) -> SliceRule:
    """Declare along which dimensions the fitter named ``fitter`` may run on a shard.

    A fitter without a rule runs on the whole tensor at the mesh's origin, and the result is
    scattered. A rule must be exact: the fitter on a slice gives bit for bit that slice of its output.

    Raises:
        DuplicateRegistrationError: ``fitter`` already has a rule and ``override`` is false.
    """
    return SLICE_RULES.register(fitter, rule, override=override)


def holds_dtensors(module: nn.Module) -> bool:
    """Whether any parameter of ``module`` is a DTensor (FSDP2, tensor parallel)."""
    try:
        from torch.distributed.tensor import DTensor
    except ImportError:  # torch built without distributed
        return False
    return any(isinstance(p, DTensor) for p in module.parameters())


def flattened_by_fsdp1(module: nn.Module) -> bool:
    """Whether ``module`` holds parameters flattened by FSDP1 ``FullyShardedDataParallel``.

    Returns:
        ``True`` when ``module`` is the FSDP1 wrapper itself under ``FULL_STATE_DICT`` (not
        ``rank0_only``): its ``state_dict()`` gathers whole tensors and ``load_state_dict`` shards them
        again, so an ordinary load is right (every rank reads the whole checkpoint). ``False`` when no
        parameter is flattened.

    Raises:
        ShardingError: Flattened parameters seen any other way: a module inside the wrapper (what
            ``self`` is in a LightningModule hook under ``FSDPStrategy``) holds 1-D views of this
            rank's flat shard or the flat parameter itself, and another state-dict type gives local or
            ``ShardedTensor`` values that a checkpoint tensor cannot be copied into.
    """
    flat = [name for name, p in module.named_parameters() if getattr(p, "_fsdp_flattened", False)]
    if not flat:
        return False
    from torch.distributed.fsdp import FullyShardedDataParallel, StateDictType

    hint = ("load before FSDP wraps the model (under Lightning's FSDPStrategy: self.load_pretrained in "
            "configure_model), shard with FSDP2 fully_shard (ModelParallelStrategy) to read only each rank's "
            "shards, or load into the FullyShardedDataParallel wrapper itself on every rank under "
            "FSDP.state_dict_type(model, StateDictType.FULL_STATE_DICT)")
    if not isinstance(module, FullyShardedDataParallel):
        raise ShardingError(
            f"{type(module).__name__} holds parameters flattened by FSDP1 (FullyShardedDataParallel) ({flat[0]}"
            f"{f' and {len(flat) - 1} more' if len(flat) > 1 else ''}): inside the FSDP1 wrapper they are this "
            "rank's pieces of a flat shard, not the model's tensors, so no checkpoint tensor can be copied into them",
            hint=hint)
    try:
        settings = FullyShardedDataParallel.get_state_dict_type(module)
    except AssertionError as exc:  # the wrapped modules disagree on their state-dict type
        raise ShardingError(f"the FSDP1 modules have different state-dict types: {exc}", hint=hint) from exc
    rank0_only = bool(getattr(settings.state_dict_config, "rank0_only", False))
    if settings.state_dict_type != StateDictType.FULL_STATE_DICT or rank0_only:
        what = f"{settings.state_dict_type.name}" + (" with rank0_only=True" if rank0_only else "")
        raise ShardingError(
            f"the FSDP1 model's state-dict type is {what}: its state dict does not hold the whole tensors on "
            "every rank, so a checkpoint cannot be loaded through it", hint=hint)
    return True


@dataclass
class _Shards:
    """What this rank will assign: local tensors by target key, and how each was made."""

    local: dict[str, Any] = field(default_factory=dict)
    scatter: dict[str, Any] = field(default_factory=dict)  # key -> whole tensor (origin) or placeholder
    reinit: list[str] = field(default_factory=list)
    how: dict[str, list[str]] = field(default_factory=dict)  # "sliced", "adapted on the slice", ...
    bytes_read: int = 0
    bytes_total: int = 0

    def record(self, how: str, key: str) -> None:
        self.how.setdefault(how, []).append(key)


@cyclic_gc_paused()
def load_sharded(module: nn.Module, source: SourceLike, opts: LoadOptions, fetch: Callable[[], Any]) -> LoadReport:
    """Load ``source`` into a module holding DTensors, each rank reading only its shards.

    Collective: every rank of the default process group calls it with the same arguments.

    Args:
        module: The sharded module (parameters on meta or materialised).
        source: The source, for messages.
        opts: The load options.
        fetch: Resolves and fetches the source on this rank (a :class:`FetchedSource`).

    Raises:
        UsageError: ``verify=True`` or a builder (a sharded load cannot run the source model), or no
            initialised process group.
        ShardingError: The mapping is one ``verify="auto"`` would verify in one process.
        ShardingError: A placement that cannot be filled (``Partial``).
        RankMismatchError: The ranks read files with different sha256.
        WeightportError: Whatever a single-process load would raise, on every rank.
    """
    _refuse_options(opts)
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        raise UsageError(
            "the module's parameters are DTensors but no torch.distributed process group is initialised",
            hint="load inside the job that sharded the model (after init_process_group / under the Lightning strategy)",
        )
    group = distributed.control_group(opts.fetch.lock_timeout)
    t0 = time.perf_counter()
    fs = distributed.fetch_once_per_machine(group, fetch)
    t_fetch = time.perf_counter() - t0

    def prepare() -> tuple[Any, Planned]:
        # A cached conversion (made by a single-process load, so verified when that load was) is read like
        # any safetensors file; none is stored here: that needs every tensor whole in one process.
        conversion = conversion_for(fs, module, opts)
        hit = conversion is not None and conversion.hit
        opened = read_source(fs, opts, fetched=cached_fetch(fs, conversion)) if conversion and hit else (
            read_source(fs, opts))
        plan_opts = options_for_converted(opts) if hit else opts
        # The planner's finite check reads every tensor whole; each rank checks its own shards instead
        # (after the cast, so an overflow into a narrower dtype is caught too). The planner still looks for
        # an overflow in the (rare) tensors a narrowing cast copies.
        planned = build_plan(module, opened, dataclasses.replace(plan_opts, check_finite=False))
        planned.plan.finite_checked = opts.check_finite
        planned.plan.check()
        if conversion is not None:
            planned.plan.notes.append(f"read from the cached conversion {conversion.path}" if hit else (
                "convert_cache: no cached conversion for this source and layout, and a sharded load stores none "
                "(it never holds the tensors whole); load once in one process with convert_cache=True to store it"))
        if not hit:
            _refuse_unverifiable(module, planned, opened, opts)
        return opened, planned

    opened, planned = distributed.agree(group, prepare, token=lambda r: r[1].plan.source.sha256, what="sha256")
    the_plan = planned.plan
    t1 = time.perf_counter()
    shards = distributed.agree(group, lambda: _make_shards(module, planned, opts))
    _scatter_whole(module, shards)
    _reinitialise(module, shards, group)
    t2 = time.perf_counter()
    _assign(module, shards)
    t3 = time.perf_counter()
    del opened  # the memory map goes once the shards no longer need it
    report = LoadReport.from_plan(the_plan, path="sharded", timings={
        "fetch": t_fetch, "plan": t1 - t0 - t_fetch, "shards": t2 - t1, "assign": t3 - t2, "total": t3 - t0})
    report.distributed = _summary(shards, dist.get_rank(), dist.get_world_size())
    report.notes.extend(_notes(shards))
    logger.info("%s", report)
    return report


def _refuse_options(opts: LoadOptions) -> None:
    if opts.verify is not False and opts.verify is not None and opts.verify != "auto":
        raise UsageError(
            "verify= is not available for a sharded module: verification runs the source architecture, with "
            "every weight whole, in the process that compares, which a sharded load exists to avoid",
            hint=VERIFY_HINT,
        )


#: How to verify a sharded load's mapping: once, where the whole model fits, then load sharded.
VERIFY_HINT = ("verify the mapping once in one process where the model fits (`weightport plan SOURCE --model "
               "MODULE:CALLABLE --verify`, or load_weights(<the model built unsharded>, source, verify=True, "
               "convert_cache=True), after which the sharded load reads the verified conversion), then pass "
               "verify=False to the sharded load")


def _refuse_unverifiable(module: nn.Module, planned: Planned, opened: Any, opts: LoadOptions) -> None:
    """Refuse a load that ``verify="auto"`` would verify in one process: a sharded load cannot.

    Raises:
        ShardingError: The plan maps another implementation's layout and the source architecture is
            known (a single-process load would compare outputs, and refuse when they differ).
    """
    if opts.verify != "auto" or not planned.plan.maps_another_layout:
        return
    from weightport.loading.equivalence import auto_verification

    decided = auto_verification(opened.source, opened.tensors, module)
    if decided.builder is None:
        if decided.note:
            planned.plan.notes.append(decided.note)
        return
    mapped = [r.how for r in planned.plan.loaded if r.how in MAPPED_HOW]
    raise ShardingError(
        f"{planned.plan.source.uri} maps onto this model through another implementation's layout "
        f"({len(mapped)} tensors by {'/'.join(sorted(set(mapped)))} matching), which a single-process load "
        f"verifies by default against {decided.against}; a sharded load cannot run that check (it needs the "
        "whole source model in one process)",
        hint=VERIFY_HINT,
    )


# --- this rank's region of a DTensor --------------------------------------------------------------


def local_index(dest: Any) -> list[Any]:
    """Per dimension of ``dest`` (a DTensor), the global indices this rank holds.

    ``None`` for a dimension the rank holds whole, ``(start, length)`` for a contiguous range, or a
    1-D index tensor (strided sharding). Computed by torch's own placement rules on an index range,
    with no communication.

    Raises:
        ShardingError: A ``Partial`` placement, which no checkpoint tensor can fill.
    """
    import torch
    from torch.distributed.tensor import Replicate, distribute_tensor
    from torch.distributed.tensor.placement_types import Partial, Shard

    mesh, placements = dest.device_mesh, dest.placements
    if any(isinstance(p, Partial) for p in placements):
        raise ShardingError(
            f"a parameter of shape {tuple(dest.shape)} has placements {placements}: a Partial placement holds "
            "summands, not a slice, so no checkpoint tensor can fill it",
            hint="load before the model is parallelised with Partial outputs, or use Shard/Replicate placements",
        )
    out: list[Any] = []
    for dim, size in enumerate(dest.shape):
        along = [_along_first(p, dim) if isinstance(p, Shard) and p.dim % dest.ndim == dim else Replicate()
                 for p in placements]
        if all(isinstance(p, Replicate) for p in along):
            out.append(None)
            continue
        held = distribute_tensor(torch.arange(size), mesh, along, src_data_rank=None).to_local().cpu()
        if held.numel() == 0:
            out.append((0, 0))
        elif torch.equal(held, torch.arange(int(held[0]), int(held[0]) + held.numel())):
            out.append((int(held[0]), held.numel()))
        else:
            out.append(held)
    return out


def _along_first(placement: Any, dim: int) -> Any:
    """``placement`` moved to dimension 0 (of a 1-D index range), keeping a strided split."""
    split = getattr(placement, "split_factor", None)
    if split is not None:
        return type(placement)(0, split_factor=split)
    return type(placement)(0)


def take(tensor: torch.Tensor, index: list[Any]) -> torch.Tensor:
    """The region ``index`` (from :func:`local_index`) of ``tensor``; a view where it is contiguous."""
    out = tensor
    for dim, ix in enumerate(index):
        if ix is None:
            continue
        out = out.narrow(dim, ix[0], ix[1]) if isinstance(ix, tuple) else out.index_select(dim, ix)
    return out


def _local_shape(shape: tuple[int, ...], index: list[Any]) -> tuple[int, ...]:
    return tuple(size if ix is None else (ix[1] if isinstance(ix, tuple) else ix.numel())
                 for size, ix in zip(shape, index))


def _device_of(dest: Any) -> torch.device:
    import torch

    local = dest.to_local()
    if not local.is_meta:
        return local.device  # type: ignore[no-any-return]
    kind = dest.device_mesh.device_type
    if kind == "cpu":
        return torch.device("cpu")
    return torch.device(kind, torch.get_device_module(kind).current_device())


# --- making the shards (no communication) ---------------------------------------------------------


def _make_shards(module: nn.Module, planned: Planned, opts: LoadOptions) -> _Shards:
    from torch.distributed.tensor import DTensor

    plan = planned.plan
    target = dict(module.state_dict(keep_vars=True))
    shards = _Shards()
    pages = MappedPages()
    for key, production in planned.producers.items():
        dest = target[key]
        shards.bytes_total += production.tensor.numel() * production.tensor.element_size()
        if isinstance(dest, DTensor):
            value = _shard_of(key, production, dest, shards)
            if value is not None and _shares_memory(value, production.tensor):
                # A copy in this process's own memory: a view would keep the mapped file pages around
                # it resident too (2 MiB page-cache folios straddle the cut), ~0.65x per rank for 2.
                value = value.clone()
        else:
            value = production().to(dest.device if not dest.is_meta else "cpu")
            shards.bytes_read += production.tensor.numel() * production.tensor.element_size()
            shards.record("loaded whole (not sharded)", key)
        if value is not None and opts.check_finite and not all_finite(value):
            _refuse_non_finite(plan, key)
        pages.release_outside(production.tensor, value if value is not None else shards.scatter.get(key))
        if value is not None:
            shards.local[key] = value
    for key, value in shards.scatter.items():
        if opts.check_finite and value is not None and not all_finite(value):
            _refuse_non_finite(plan, key)
    shards.reinit = _to_initialise(module, planned, shards)
    return shards


def _shares_memory(a: Any, b: Any) -> bool:
    return bool(a.device == b.device and a.numel() and b.numel()
                and a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr())


class MappedPages:
    """Unmaps, from this process, the pages of a memory-mapped checkpoint tensor that its shard does not use.

    The kernel maps file pages in blocks (fault-around, and 2 MiB page-cache folios mapped whole), so
    a shard that is a view of a mapped tensor keeps pages of the other ranks' regions resident in this
    rank (measured with ViT-B on 2 ranks: 0.61-0.67x of the checkpoint per rank, all of the excess in
    ``RssFile``). So a rank's shards are copies, and once a shard is made, the whole pages of the
    source tensor outside the bytes a shard still views (all of them when it is a copy) get
    ``madvise(MADV_DONTNEED)``: the rank's resident memory is its shards plus, at most, the pages of
    the one tensor being cut.

    This is only done inside read-only or private *file-backed* mappings, found in
    ``/proc/self/maps``: a clean page of a file mapping is dropped from this process only (the page
    cache keeps it) and faults back in with the same bytes if anything reads it again, so a wrong
    range can cost a re-read but never change a value. Nothing is done elsewhere (anonymous memory,
    where the call would zero the data), nor off Linux.
    """

    def __init__(self) -> None:
        self.spans: list[tuple[int, int]] = []
        self.madvise: Any = None
        if not sys.platform.startswith("linux"):
            return
        try:
            import ctypes

            self.madvise = ctypes.CDLL(None, use_errno=True).madvise
            self.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
            with open("/proc/self/maps") as maps:
                for line in maps:
                    parts = line.split(maxsplit=5)
                    # start-end perms offset dev inode [path]: a regular file's mapping, not shared-writable
                    if len(parts) == 6 and parts[4] != "0" and not parts[5].startswith("[") and parts[1][3] == "p":
                        lo, hi = parts[0].split("-")
                        self.spans.append((int(lo, 16), int(hi, 16)))
        except (OSError, AttributeError):
            self.spans, self.madvise = [], None

    def release_outside(self, source: Any, kept: Any) -> None:
        """Unmap the whole pages of ``source`` outside the bytes ``kept`` views (all, when it is a copy)."""
        if self.madvise is None or source.device.type != "cpu" or not source.is_contiguous() or source.numel() == 0:
            return
        lo = source.data_ptr()
        hi = lo + source.numel() * source.element_size()
        span = next(((a, b) for a, b in self.spans if a <= lo and hi <= b), None)
        if span is None:  # not file-backed: never touched
            return
        ranges = [(lo, hi)]
        if kept is not None and kept.device.type == "cpu" and kept.numel() > 0:
            start = kept.data_ptr()
            end = start + (kept.numel() * kept.element_size() if kept.is_contiguous() else 0)
            if start < hi and end > lo:  # a view into the source: keep its bytes (and pages straddling them)
                if not kept.is_contiguous():
                    return
                ranges = [(lo, start), (end, hi)]
        for a, b in ranges:
            a = -(-a // PAGE) * PAGE  # whole pages only: a page shared with a kept byte stays
            b = b // PAGE * PAGE
            if b > a:
                self.madvise(a, b - a, MADV_DONTNEED)


def _shard_of(key: str, production: Production, dest: Any, shards: _Shards) -> Any:
    """This rank's shard of ``key``, or ``None`` when it comes by scatter (recorded in ``shards``)."""
    import torch

    index = local_index(dest)
    expected = tuple(dest.to_local().shape)
    if _local_shape(tuple(dest.shape), index) != expected:
        raise ShardingError(
            f"{key}: the shard computed from its placements {dest.placements} has shape "
            f"{_local_shape(tuple(dest.shape), index)}, but the parameter's local tensor is {expected}",
            hint="this placement is not supported for loading; load before parallelising, then shard",
        )
    device = _device_of(dest)
    source = production.tensor
    if production.fitter is None:
        value = take(source, index)
        shards.bytes_read += value.numel() * value.element_size()
        shards.record("sliced", key)
        return _finish(value, production.dtype, device)
    rule = SLICE_RULES.get(production.fitter.name)
    cut = {d for d, ix in enumerate(index) if ix is not None}
    if rule is not None and cut <= rule(tuple(source.shape), tuple(dest.shape)):
        if 0 in expected:
            shards.record(f"adapted on the slice ({production.fitter.name})", key)
            return torch.empty(expected, dtype=production.dtype, device=device)
        piece = take(source, index)
        shards.bytes_read += piece.numel() * piece.element_size()
        ctx = dataclasses.replace(production.ctx, target_shape=expected) if production.ctx is not None else None
        shards.record(f"adapted on the slice ({production.fitter.name})", key)
        return _finish(production.make(piece, ctx), production.dtype, device)
    # The fitter needs the whole tensor: made where distribute_tensor reads it (the mesh's origin
    # along its first dimension), scattered afterwards.
    coordinate = dest.device_mesh.get_coordinate()
    if coordinate is not None and coordinate[0] == 0:
        shards.scatter[key] = production().to(device)
        shards.bytes_read += source.numel() * source.element_size()
    else:
        shards.scatter[key] = None
    shards.record(f"adapted whole on rank 0, scattered ({production.fitter.name})", key)
    return None


def _finish(value: torch.Tensor, dtype: Any, device: Any) -> torch.Tensor:
    value = value.to(device=device, dtype=dtype)
    return value if value.is_contiguous() else value.contiguous()


def _refuse_non_finite(plan: LoadPlan, key: str) -> None:
    from weightport.errors import NonFiniteWeightsError
    from weightport.report import NONFINITE_HINT

    sources = {r.target_key: r.source_key for r in plan.loaded}
    raise NonFiniteWeightsError(
        f"{sources.get(key, key)} in {plan.source.uri} holds NaN or infinite values",
        hint=NONFINITE_HINT,
    )


def _to_initialise(module: nn.Module, planned: Planned, shards: _Shards) -> list[str]:
    """Keys to initialise: the plan's re-initialised keys, then whatever is still on meta.

    Raises:
        UsageError: A tensor on meta that nothing loads and whose module has no ``reset_parameters``.
    """
    keys = [r.key for r in planned.plan.reinitialized]
    covered = set(planned.producers) | set(keys)
    for path, sub in module.named_modules():
        prefix = f"{path}." if path else ""
        for name, tensor in list(sub._parameters.items()) + list(sub._buffers.items()):
            if tensor is not None and _is_meta(tensor) and prefix + name not in covered:
                keys.append(prefix + name)
    for owner in dict.fromkeys(parent(k) for k in keys):
        sub = module.get_submodule(owner) if owner else module
        if not callable(getattr(sub, "reset_parameters", None)) and not callable(
                getattr(sub, "init_non_persistent_buffers", None)):
            raise UsageError(
                f"{owner or 'the root'} ({type(sub).__name__}) holds tensors on the meta device that the checkpoint "
                "does not cover, and it has no reset_parameters() to initialise them",
                hint="initialise them before loading (to_empty + your own init), or load a checkpoint that covers them",
            )
    return keys


def _is_meta(tensor: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return bool(tensor.to_local().is_meta if isinstance(tensor, DTensor) else tensor.is_meta)


# --- the collective steps -------------------------------------------------------------------------


def _scatter_whole(module: nn.Module, shards: _Shards) -> None:
    """Scatter the tensors adapted whole at the mesh's origin; every rank, the same order."""
    import torch
    from torch.distributed.tensor import distribute_tensor

    target = dict(module.state_dict(keep_vars=True))
    for key in sorted(shards.scatter):
        dest = target[key]
        whole = shards.scatter[key]
        if whole is None:  # placeholder: distribute_tensor reads only the origin's data
            whole = torch.empty(tuple(dest.shape), dtype=dest.dtype, device=_device_of(dest))
        shards.local[key] = distribute_tensor(whole, dest.device_mesh, dest.placements, src_data_rank=0).to_local()
    shards.scatter.clear()


def _reinitialise(module: nn.Module, shards: _Shards, group: Any) -> None:
    """Initialise ``shards.reinit`` the way one process would, from rank 0's RNG state, and keep this
    rank's shards. Every rank ends with the RNG state rank 0 ends with."""
    if not shards.reinit:
        return
    import torch
    import torch.distributed as dist

    state = [torch.get_rng_state()]
    dist.broadcast_object_list(state, src=0, group=group)
    torch.set_rng_state(state[0])
    wanted = set(shards.reinit)
    for owner in dict.fromkeys(parent(k) for k in shards.reinit):
        sub = module.get_submodule(owner) if owner else module
        prefix = f"{owner}." if owner else ""
        for name, whole, dest in _initialised_whole(sub):
            key = prefix + name
            if key in wanted:
                shards.local[key] = _keep_shard(whole, dest)
                shards.record("re-initialised whole from rank 0's RNG state, sharded", key)


def _initialised_whole(sub: nn.Module) -> list[tuple[str, Any, Any]]:
    """Run ``sub``'s initialisation on plain, whole copies of its own tensors; the module keeps its own.

    Returns:
        ``(name, whole initialised tensor, the module's tensor)`` for each direct parameter and buffer.
    """
    import torch
    from torch import nn
    from torch.distributed.tensor import DTensor

    saved_params: dict[str, Any] = dict(sub._parameters)
    saved_buffers: dict[str, Any] = dict(sub._buffers)
    try:
        for name, t in saved_params.items():
            if t is not None:
                device = _device_of(t) if isinstance(t, DTensor) else (t.device if not t.is_meta else "cpu")
                sub._parameters[name] = nn.Parameter(torch.empty(tuple(t.shape), dtype=t.dtype, device=device),
                                                     requires_grad=t.requires_grad)
        for name, t in saved_buffers.items():
            if t is not None:
                sub._buffers[name] = t.clone() if not _is_meta(t) else torch.empty(tuple(t.shape), dtype=t.dtype)
        with torch.no_grad():
            for hook in ("reset_parameters", "init_non_persistent_buffers"):
                init = getattr(sub, hook, None)
                if callable(init):
                    init()
        made: list[tuple[str, Any, Any]] = [(n, sub._parameters[n], t) for n, t in saved_params.items()
                                            if t is not None]
        made += [(n, sub._buffers[n], t) for n, t in saved_buffers.items() if t is not None]
        return [(n, w.detach(), d) for n, w, d in made]
    finally:
        sub._parameters.update(saved_params)
        sub._buffers.update(saved_buffers)


def _keep_shard(whole: Any, dest: Any) -> Any:
    from torch.distributed.tensor import DTensor

    if not isinstance(dest, DTensor):
        return whole
    return take(whole, local_index(dest)).contiguous()


def _assign(module: nn.Module, shards: _Shards) -> None:
    """Put every shard in place: DTensors with the parameter's mesh and placements; plain tensors whole.

    ``load_state_dict(assign=True)`` lets FSDP2 re-register (and re-pad) its sharded parameters.
    """
    from torch.distributed.tensor import DTensor

    target = dict(module.state_dict(keep_vars=True))
    state: dict[str, Any] = {}
    loose: dict[str, Any] = {}  # tensors outside the state dict (non-persistent buffers)
    for key, local in shards.local.items():
        dest = target.get(key)
        if dest is None:
            loose[key] = local
            continue
        if isinstance(dest, DTensor):
            local = DTensor.from_local(local, dest.device_mesh, dest.placements, run_check=False,
                                       shape=dest.shape, stride=dest.stride())
        state[key] = local
    module.load_state_dict(state, strict=False, assign=True)
    for key, value in loose.items():
        owner = parent(key)
        sub = module.get_submodule(owner) if owner else module
        sub._buffers[key.rsplit(".", 1)[-1]] = value


def _summary(shards: _Shards, rank: int, world: int) -> dict[str, Any]:
    return {"rank": rank, "world_size": world, "bytes_read": shards.bytes_read, "bytes_total": shards.bytes_total,
            "how": {k: len(v) for k, v in shards.how.items()}}


def _notes(shards: _Shards) -> list[str]:
    from weightport.keys import fold_keys

    notes = [f"sharded load: this rank read {format_bytes(shards.bytes_read)} of the "
             f"{format_bytes(shards.bytes_total)} it loads"]
    for how, keys in shards.how.items():
        if how != "sliced":
            notes.append(f"{how}: " + ", ".join(fold_keys(keys, limit=6)))
    return notes
