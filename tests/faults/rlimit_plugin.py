"""A pytest plugin for a child run of the fault corpus under an address-space limit (``RLIMIT_AS``).

Loaded with ``-p tests.faults.rlimit_plugin`` by ``tests/faults/test_corpus_rlimit.py``. Once every
test module is imported (torch and weightport included), it lowers the process's address-space limit
to what it uses plus ``HEADROOM`` (the bound of ``tests/faults/bounded_child.py``), proves the limit
bites (an allocation of twice the headroom must fail), and writes the limit, the proof and every
test's outcome to ``$WEIGHTPORT_RLIMIT_REPORT`` as JSON.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.faults.bounded_child import limit_address_space

_report: dict[str, Any] = {"outcomes": {}}


def pytest_collection_finish(session: pytest.Session) -> None:
    limit, bites = limit_address_space()
    _report.update(limit=limit, bites=bites, collected=len(session.items))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        outcomes = _report["outcomes"]
        if outcomes.get(report.nodeid) in (None, "passed"):
            outcomes[report.nodeid] = report.outcome


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = os.environ.get("WEIGHTPORT_RLIMIT_REPORT")
    if path:
        with open(path, "w") as out:
            json.dump(_report, out)
