"""The suite cannot reach the network: the guard in conftest.py refuses and reports every attempt."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.helpers import netguard
from tests.helpers.servers import FileServer


def test_a_connection_outside_loopback_is_refused_and_recorded() -> None:
    with pytest.raises(ConnectionRefusedError, match="network guard"):
        socket.create_connection(("192.0.2.1", 443), timeout=1)  # TEST-NET-1: never routable
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo("huggingface.co", 443)
    tried = netguard.take()  # consumed here, so this test itself passes
    assert any("192.0.2.1" in t for t in tried) and any("huggingface.co" in t for t in tried)


def test_loopback_servers_still_work() -> None:
    server = FileServer()
    try:
        url = server.add("/x.bin", b"abc")
        import urllib.request

        assert urllib.request.urlopen(url, timeout=10).read() == b"abc"
    finally:
        server.close()
    assert netguard.take() == []


def test_processes_the_tests_start_are_guarded_too() -> None:
    code = ("import socket\ntry:\n    socket.create_connection(('198.51.100.7', 80), timeout=1)\n"
            "except OSError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), timeout=60)
    assert "network guard" in out.stdout
    assert any("198.51.100.7" in t for t in netguard.take())


def test_the_hub_and_torch_caches_are_isolated(tmp_path_factory: pytest.TempPathFactory) -> None:
    base = str(tmp_path_factory.getbasetemp())
    for var in ("HF_HOME", "TORCH_HOME", "WEIGHTPORT_CACHE"):
        assert os.environ[var].startswith(base), var
    assert "HF_HUB_CACHE" not in os.environ and "HUGGINGFACE_HUB_CACHE" not in os.environ
    assert os.environ["HF_ENDPOINT"].startswith("http://127.0.0.1:")
