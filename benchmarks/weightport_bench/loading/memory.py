"""Memory of the current process, read from the kernel (Linux; other systems give what they can)."""

from __future__ import annotations

import os
import re
import resource
import sys
from pathlib import Path

MIB = 1024 * 1024
# A mapped shared object: ``libtorch_cpu.so``, ``_C.cpython-311-x86_64-linux-gnu.so``, ``libcudart.so.13``.
_SHARED_OBJECT = re.compile(r"\.so(\.[\w.]+)?$")


def peak_rss_mib() -> float:
    """The peak resident set size of this process image so far, in MiB.

    Linux's ``VmHWM`` where there is one: ``getrusage``'s ``ru_maxrss`` survives ``exec``, so a
    child spawned by a large parent (vfork, or fork then exec) starts with the parent's peak.
    """
    hwm = _proc_field(Path("/proc/self/status"), "VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return maxrss / MIB if sys.platform == "darwin" else maxrss / 1024


def _proc_field(path: Path, field: str) -> float | None:
    """A ``Name:   123 kB`` field of a /proc file, in MiB, or None where the file or field is missing."""
    try:
        text = path.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name == field:
            return int(rest.split()[0]) / 1024
    return None


def rss_mib() -> float | None:
    """The current resident set size (``VmRSS``), in MiB."""
    return _proc_field(Path("/proc/self/status"), "VmRSS")


def anon_mib() -> float | None:
    """Current anonymous (private, not file-backed) memory, in MiB.

    Weights that point into a mmapped file count as shared file pages, not here; a private copy
    of them (a ``torch.load`` without mmap, random initialisation, a copy-on-write) counts here.
    """
    return _proc_field(Path("/proc/self/smaps_rollup"), "Anonymous")


def library_rss_mib() -> float | None:
    """Resident pages of mapped program code: shared objects and the interpreter's executable, in MiB.

    These are read-only file pages shared with every process that runs the same libraries; the
    first call of a torch function pages some of its code in. A load's memory is what it adds
    without them (:func:`weightport_bench.loading.runner` subtracts their growth). None where the
    system has no ``/proc/self/smaps``.
    """
    try:
        text = Path("/proc/self/smaps").read_text()
    except OSError:
        return None
    executable = os.path.realpath(sys.executable)
    total_kib, counting = 0, False
    for line in text.splitlines():
        head = line.split(maxsplit=5)
        if len(head) >= 5 and "-" in head[0] and not head[0].endswith(":"):  # a mapping's header line
            path = head[5] if len(head) == 6 else ""
            counting = bool(_SHARED_OBJECT.search(path)) or path == executable
        elif counting and head and head[0] == "Rss:":
            total_kib += int(head[1])
    return total_kib / 1024
