"""A network guard for the test suite: no test reaches past the loopback interface.

:func:`install` replaces ``socket.getaddrinfo`` and ``socket.socket.connect``/``connect_ex`` so that
only ``127.0.0.1``, ``::1``, ``localhost`` and Unix sockets can be reached. Anything else is refused
at once (a DNS name fails as an unknown host, a connection as refused, so code under test fails fast
instead of hanging) and recorded; the root ``conftest.py`` fails the test that tried. Processes the
tests start inherit the guard through ``netguard_site/sitecustomize.py`` (on ``PYTHONPATH``) and
record what they tried in the file named by ``WEIGHTPORT_TEST_NETGUARD_LOG``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from typing import Any

LOG_ENV = "WEIGHTPORT_TEST_NETGUARD_LOG"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "ip6-localhost"})

#: What this process tried and was refused (read and cleared by the conftest after each test).
violations: list[str] = []
_installed = False


def _text(host: Any) -> str:
    return host.decode() if isinstance(host, bytes) else str(host)


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _loopback(host: str) -> bool:
    return host.lower() in LOOPBACK_NAMES


def _refuse(what: str) -> None:
    message = f"network guard: {what} (tests never leave 127.0.0.1/::1)"
    log = os.environ.get(LOG_ENV)
    if not log:
        violations.append(message)
        return
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"pid {os.getpid()}: {message}\n")


def install() -> None:
    """Guard this process (idempotent)."""
    global _installed
    if _installed:
        return
    _installed = True
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and host != b"" and host != "":
            name = _text(host)
            if not _loopback(name) and not _is_numeric(name):
                _refuse(f"name lookup of {name!r} refused")
                raise socket.gaierror(socket.EAI_NONAME, f"network guard: {name!r} is not resolved in tests")
        return real_getaddrinfo(host, *args, **kwargs)

    def _check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
            host = _text(address[0])
            if not _loopback(host):
                _refuse(f"connection to {address!r} refused")
                raise ConnectionRefusedError(f"network guard: connection to {address!r} refused in tests")

    def connect(self: socket.socket, address: Any) -> None:
        _check(self, address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        _check(self, address)
        return real_connect_ex(self, address)

    socket.getaddrinfo = getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]


def take() -> list[str]:
    """The refusals recorded in this process and in the processes it started, since the last call."""
    found = list(violations)
    violations.clear()
    log = os.environ.get(LOG_ENV)
    if log and os.path.exists(log):
        with open(log, encoding="utf-8") as handle:
            found += [line.rstrip("\n") for line in handle if line.strip()]
        os.remove(log)
    return found
