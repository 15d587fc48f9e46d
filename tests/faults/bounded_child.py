"""Run fault cases under an address-space limit and report each outcome as one JSON line.

``python -m tests.faults.bounded_child CASES.json``: after importing torch and weightport, the
process limits its address space (``RLIMIT_AS``) to what it uses plus ``HEADROOM`` bytes, checks
the limit bites (a larger allocation must fail), then runs each case (``{"id", "call", "source",
"kwargs"}``) through the public API and prints ``{"id", "error", "mro", "message", "same"}``.
"""

from __future__ import annotations

import json
import resource
import sys

import torch

import weightport
from tests.helpers.models import TinyNet
from weightport.cli import main as cli_main

HEADROOM = 1536 << 20


def _vm_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmSize:"))
    return int(line.split()[1]) * 1024


def _run(case: dict, model: torch.nn.Module) -> dict:
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out: dict = {"id": case["id"]}
    try:
        if case["call"] == "load":
            weightport.load_weights(model, case["source"], **case.get("kwargs", {}))
        elif case["call"] == "plan":
            out["ok"] = weightport.plan(model, case["source"], **case.get("kwargs", {})).ok
        elif case["call"] == "read":
            weightport.read_state_dict(case["source"], **case.get("kwargs", {}))
        else:
            out["exit"] = cli_main([case["call"], case["source"]])
    except weightport.WeightportError as exc:
        out.update(error=type(exc).__name__, mro=[c.__name__ for c in type(exc).__mro__], message=str(exc))
    except BaseException as exc:  # reported, so the parent names what escaped
        out.update(error=type(exc).__name__, mro=[c.__name__ for c in type(exc).__mro__], message=str(exc)[:500])
    after = model.state_dict()
    out["same"] = all(torch.equal(after[k], v) for k, v in before.items())
    return out


def limit_address_space() -> tuple[int, bool]:
    """Limit this process's address space to what it uses now plus ``HEADROOM``: ``(the limit, it bites)``.

    It bites when an allocation of twice the headroom then fails, which the callers report.
    """
    limit = _vm_bytes() + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.getrlimit(resource.RLIMIT_AS)[1]))
    try:
        bytearray(2 * HEADROOM)
        return limit, False
    except MemoryError:
        return limit, True


def main() -> None:
    cases = json.loads(open(sys.argv[1]).read())
    torch.manual_seed(0)
    model = TinyNet()
    limit, bites = limit_address_space()
    print(json.dumps({"id": "limit", "bites": bites, "limit": limit}), flush=True)
    for case in cases:
        print(json.dumps(_run(case, model)), flush=True)


if __name__ == "__main__":
    main()
