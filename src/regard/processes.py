"""Whether a process on this machine is still alive: for claims, ticks and scratch copies
that a killed run left behind."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine (and PID namespace) may still do work: it
    exists and is not a zombie (killed, its parent has not reaped it yet). When in doubt
    (another user's process, no /proc), True."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
