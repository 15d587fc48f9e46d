"""Started by Python in every process the test suite launches (it is on their ``PYTHONPATH``)."""

import os

if os.environ.get("WEIGHTPORT_TEST_NETGUARD_LOG"):
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location(
        "_weightport_netguard", Path(__file__).resolve().parents[1] / "netguard.py"
    )
    if _spec is not None and _spec.loader is not None:
        _guard = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(_guard)
        _guard.install()
