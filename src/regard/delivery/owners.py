"""Who holds a claim, and whether that run is still alive.

A claim's ``lease_owner`` names its run: ``host:pidns:pid:random``. A run on the same host
(and in the same PID namespace, so containers sharing a store never judge each other) can
tell that the run is gone, killed or crashed, and take its claims up at once instead of
waiting for the lease to end. Anywhere else, or when in doubt, the lease decides.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from pathlib import Path


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "-"


def default_owner() -> str:
    """This process's name for its claims (the random part: pids get reused)."""
    return f"{socket.gethostname()}:{_pid_namespace()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def gone(owners: Iterable[str]) -> list[str]:
    """The owners among ``owners`` whose process has certainly ended."""
    here = (socket.gethostname(), _pid_namespace())
    out = []
    for owner in owners:
        parts = owner.split(":")
        if len(parts) != 4 or (parts[0], parts[1]) != here or not parts[2].isdigit():
            continue
        if not _alive(int(parts[2])):
            out.append(owner)
    return out


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        # a killed process its parent has not reaped yet is a zombie: it will never send
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
