"""A load inside a ``torch.distributed`` job: one fetch per machine, and one outcome on every rank.

Every rank of the default process group calls the load (it is collective). Local rank 0 of each
machine fetches first while the other ranks wait in a collective of a dedicated gloo group whose
timeout is the fetch's ``lock_timeout`` (the time one process may wait for another's download), so a
slow download never trips the job's own collective timeout; then the others fetch, which is a cache
hit. Each step that can fail runs under :func:`agree`: the ranks exchange their outcome, and when any
rank failed, every rank raises the same error — no rank goes on alone into a collective the others
never reach.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

from weightport.errors import RankMismatchError, WeightportError

logger = logging.getLogger("weightport")

T = TypeVar("T")

#: The smallest wait for another rank's download, whatever the options say (seconds).
MIN_WAIT = 1800.0

_GROUPS: dict[tuple[int, float], Any] = {}


def active() -> bool:
    """Whether this process is one of several ranks of an initialised process group."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def control_group(wait_s: float) -> Any:
    """A gloo group over every rank for the load's small exchanges, created once per default group.

    Creating a group is collective: the first load on each rank creates it, in the same order.
    """
    import torch.distributed as dist

    world = dist.group.WORLD
    timeout = max(wait_s, MIN_WAIT)
    key = (id(world), timeout)
    if key not in _GROUPS:
        _GROUPS[key] = dist.new_group(backend="gloo", timeout=timedelta(seconds=timeout))
    return _GROUPS[key]


def local_rank(group: Any) -> int:
    """This process's rank among the ranks on its machine (``LOCAL_RANK``, else by host name)."""
    import torch.distributed as dist

    env = os.environ.get("LOCAL_RANK")
    if env is not None and env.isdigit():
        return int(env)
    hosts: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(hosts, socket.gethostname(), group=group)
    me = dist.get_rank()
    return sum(1 for host in hosts[:me] if host == hosts[me])


def agree(group: Any, step: Callable[[], T], *, token: Callable[[T], Any] | None = None,
          what: str = "value") -> T:
    """Run ``step`` on every rank; when any rank fails, raise that rank's error on every rank.

    Args:
        group: The control group.
        step: The work of this rank (collective-free).
        token: A small picklable value of the result that every rank must share (a sha256).
        what: What the token is, for the error.

    Raises:
        Exception: The error of the lowest rank that failed, on every rank.
        RankMismatchError: The ranks' tokens differ.
    """
    import torch.distributed as dist

    result: Any = None
    failure: BaseException | None = None
    try:
        result = step()
    except Exception as exc:  # exchanged below, then raised on every rank
        failure = exc
    mine = (_portable(failure), token(result) if token is not None and failure is None else None)
    outcomes: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(outcomes, mine, group=group)
    failed = [rank for rank, (error, _) in enumerate(outcomes) if error is not None]
    if failed:
        first = failed[0]
        error: BaseException = failure if first == dist.get_rank() and failure is not None else outcomes[first][0]
        # Every rank raises the same type and message; which rank it came from, when not all failed.
        raise error if len(failed) == len(outcomes) else _on_rank(error, first, len(outcomes))
    if token is not None:
        tokens = [t for _, t in outcomes]
        if len(set(tokens)) > 1:
            raise RankMismatchError(
                f"the ranks of this distributed load disagree on the {what}: "
                + ", ".join(f"rank {r}: {t}" for r, t in enumerate(tokens)),
                hint="every rank must read the same file: pin the source (a revision, #sha256=...) or put the "
                "cache on storage all machines see",
            )
    return result  # type: ignore[no-any-return]


def _portable(error: BaseException | None) -> BaseException | None:
    """``error`` if it survives pickling, else a :class:`WeightportError` saying what it was."""
    if error is None:
        return None
    import pickle

    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return WeightportError(f"{type(error).__name__}: {error}")


def _on_rank(error: BaseException, rank: int, world: int) -> BaseException:
    if isinstance(error, WeightportError):
        error.message = f"{error.message} (on rank {rank} of {world})"
        error.args = (str(error),)
    return error


def fetch_once_per_machine(group: Any, fetch: Callable[[], T]) -> T:
    """Local rank 0 of each machine fetches; the other ranks wait for it, then fetch (a cache hit)."""
    first = local_rank(group) == 0
    fetched = agree(group, fetch if first else (lambda: None))
    later = agree(group, (lambda: None) if first else fetch)
    return fetched if first else later  # type: ignore[return-value]
