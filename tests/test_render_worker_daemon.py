"""The render worker of a real daemon: forked when the daemon starts, before its scheduler,
dispatch lanes and HTTP server run any thread (a fork beside running threads may inherit a
lock held for ever), kept across ticks, reading templates changed between ticks, and gone
with the daemon."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from faults.sink import FaultySink
from test_daemon_process import (  # noqa: F401 - the fixtures are used by name
    CAMPAIGN,
    daemons,
    import_jsonl,
    order,
    shop,
    sink,
    store_of,
    wait_for,
)

pytestmark = pytest.mark.slow


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def sent_text(workspace: Any, contact: str) -> str | None:
    with store_of(workspace) as store:
        row = store.conn.execute(
            "SELECT message FROM deliveries WHERE contact_id = ? AND state = 'sent'", (contact,)
        ).fetchone()
    return json.loads(row[0])["text"] if row else None


def test_the_daemons_render_worker_is_forked_before_its_threads(
    shop: Any,  # noqa: F811
    sink: FaultySink,  # noqa: F811
) -> None:
    shop.write("campaigns/thanks.toml", CAMPAIGN.format(name="thanks"))
    shop.write(
        "templates/thanks.j2", "{% block text %}Danke, {{ contact.first_name }}!{% endblock %}"
    )
    import_jsonl(shop, "contacts", [{"id": c, "first_name": "Jürgen"} for c in ("k1", "k2")])
    daemon = shop.start()
    pid = daemon.process.pid
    wait_for(lambda: daemon.events("started"), what="the daemon started")
    # started before the first message: a copy of the daemon (a fork), not a new interpreter
    (worker,) = wait_for(lambda: children(pid), what="the render worker")
    assert cmdline(worker) == cmdline(pid)

    import_jsonl(shop, "events", [order("k1")])
    assert wait_for(lambda: sent_text(shop, "k1"), what="k1 sent") == "Danke, Jürgen!"
    # a template changed between ticks is read again by the same worker
    shop.write(
        "templates/thanks.j2",
        "{% block text %}Vielen Dank, {{ contact.first_name }}!{% endblock %}",
    )
    import_jsonl(shop, "events", [order("k2")])
    assert wait_for(lambda: sent_text(shop, "k2"), what="k2 sent") == "Vielen Dank, Jürgen!"
    assert children(pid) == [worker]  # one worker for every tick: no process per tick

    daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    wait_for(lambda: not Path(f"/proc/{worker}").exists(), what="the worker gone with the daemon")
