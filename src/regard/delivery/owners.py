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

from regard.processes import alive


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
        if not alive(int(parts[2])):
            out.append(owner)
    return out
