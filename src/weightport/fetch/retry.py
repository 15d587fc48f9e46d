"""weightport's one retry policy, for every source that goes over the network.

A transient failure (a connection refused, reset or timed out, a name that did not resolve, HTTP
408/429/5xx, a body cut off) is tried again ``retries`` more times, after ``backoff`` seconds, then
twice that, and so on; everything else fails at once. Each retry is one log line on the
``weightport`` logger (what failed and when the next attempt comes; the hint is given once, with
the final error). URL downloads and hub requests both go through :func:`with_retries`;
huggingface_hub's own retries are not used (see ``weightport.adapters.hf``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from weightport.errors import WeightportError

logger = logging.getLogger("weightport")

T = TypeVar("T")

#: Seconds before the first retry (doubled for each following one).
BACKOFF = 0.5


class Transient(Exception):
    """Raised by an attempt to say: this failure is worth another attempt. Wraps the error to report."""

    def __init__(self, error: WeightportError) -> None:
        super().__init__(str(error))
        self.error = error


def with_retries(attempt: Callable[[], T], *, what: str, retries: int, backoff: float = BACKOFF) -> T:
    """``attempt()``, tried again after each :class:`Transient` failure, at most ``retries`` more times.

    Args:
        attempt: Does the work; raises :class:`Transient` for a failure worth retrying.
        what: What is being done, for the log line (``download of https://…``).
        retries: Further attempts after the first.
        backoff: Seconds before the first retry; doubled for each following one.

    Raises:
        WeightportError: The last transient failure's error, once the retries are spent; any other
            error at once.
    """
    done = 0
    while True:
        try:
            return attempt()
        except Transient as exc:
            if done >= retries:
                raise exc.error from exc.error.__cause__
            delay = backoff * (2**done)
            done += 1
            logger.warning("%s failed: %s; retry %d/%d in %.1fs", what, exc.error.message, done, retries, delay)
            time.sleep(delay)
