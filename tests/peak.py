"""``python tests/peak.py PEAK_FILE ARGS…`` runs ``regard ARGS…`` in this process and, as it
exits, writes its own peak resident memory (``VmHWM`` of /proc/self/status, in KiB) to
PEAK_FILE.

Why not the ``ru_maxrss`` that ``os.wait4`` gives for the child: on Linux a process's
``ru_maxrss`` starts from the high-water mark of the memory it was forked from, kept
through ``exec``; the fork of a test is the pytest process, whose peak is whatever the
earlier tests of the session left behind. ``VmHWM`` is of this program's own memory only.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path


def own_peak_kib() -> int:
    """This process's peak resident memory since its ``exec``, in KiB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    where = Path(sys.argv[1])
    atexit.register(lambda: where.write_text(str(own_peak_kib()), encoding="ascii"))
    del sys.path[0]  # the tests' folder: regard imports only its own modules
    sys.argv = ["regard", *sys.argv[2:]]
    from regard.cli import main as regard

    regard()


if __name__ == "__main__":
    main()
