"""Messages rendered in batches: one request to the render worker for a tick's batch, each
message still bounded on its own; a worker started beside other threads is a fresh
interpreter, not a fork; a template changed between batches is read again; a render error
inside a batch is decided as it would be one by one (the cap it frees)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import Workspace
from regard.campaigns import load_campaign
from regard.campaigns.model import Campaign
from regard.config import Config
from regard.engine import tick
from regard.engine.messages import Renderer, Wanted
from regard.errors import TemplateError
from regard.render import isolation, render_message
from regard.render.isolation import Job, render_messages
from regard.render.message import Message
from regard.render.unsubscribe import Links
from regard.store import Store, open_store
from regard.store.lifecycle import message_text
from regard.store.occasions import Occasion
from regard.workspace import load_config
from shop_rows import add_contact, add_event, campaign, instant
from test_render import NOW, ORDER, contact, email, setup
from test_render_bounds import GREEDY, SLOW

tick_module = importlib.import_module("regard.engine.tick")  # the module, not the function


def jobs(*ids: str) -> list[Job]:
    return [Job(contact(id=i), ORDER, f"o-{i}", f"d-{i}") for i in ids]


def test_a_batch_renders_what_one_by_one_renders(workspace: Workspace) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo {{ contact.id }}", "Nr. {{ occasion }}")})
    found = load_campaign(config, "c")
    batch = render_messages(config, found, jobs("a", "b", "c"), NOW)
    alone = [render_message(config, found, j.contact, j.event, j.occasion, NOW) for j in jobs("a", "b", "c")]  # fmt: skip
    assert batch == alone
    assert [m.subject for m in batch if isinstance(m, Message)] == ["Hallo a", "Hallo b", "Hallo c"]


def test_a_message_over_the_memory_bound_leaves_the_rest_of_its_batch_rendered(
    workspace: Workspace,
) -> None:
    text = '{% if contact.id == "b" %}' + GREEDY + "{% else %}ok{% endif %}"
    config = setup(workspace, {"m.de.j2": email("Hallo", text)})
    first = render_messages(config, load_campaign(config, "c"), jobs("a", "b", "c", "d"), NOW)
    path = workspace.root / "templates" / "m.de.j2"
    assert [m.text if isinstance(m, Message) else str(m) for m in first] == [
        "Liebe Frau Schmidt,\n\nok",
        f"{path}:5: refused: rendering needed more than {isolation.MAX_RENDER_MEMORY >> 20} MB",
        "Liebe Frau Schmidt,\n\nok",  # rendered by a fresh worker: the first one left
        "Liebe Frau Schmidt,\n\nok",
    ]


def test_a_message_out_of_time_in_a_batch_refuses_its_file_for_the_rest(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(isolation, "MAX_RENDER_SECONDS", 1.0)
    text = '{% if contact.id == "b" %}' + SLOW + "{% else %}ok{% endif %}"
    config = setup(workspace, {"m.de.j2": email("Hallo", text)})
    found = render_messages(config, load_campaign(config, "c"), jobs("a", "b", "c"), NOW)
    path = workspace.root / "templates" / "m.de.j2"
    assert isinstance(found[0], Message) and found[0].text == "Liebe Frau Schmidt,\n\nok"
    assert [str(m) for m in found[1:]] == [
        f"{path}: refused: rendering took longer than 1 s",
        f"{path}: refused: a message of this template took longer than 1 s; it is not "
        "rendered again until the file changes",
    ]
    isolation._too_slow.clear()


@pytest.fixture
def another_thread() -> Iterator[None]:
    """A thread running in this process while the test runs (as a daemon's lanes do)."""
    done = threading.Event()
    thread = threading.Thread(target=done.wait)
    thread.start()
    isolation._retire()
    try:
        yield
    finally:
        done.set()
        thread.join()
        isolation._retire()


@pytest.mark.usefixtures("another_thread")
def test_a_worker_started_beside_other_threads_is_a_fresh_interpreter(
    workspace: Workspace,
) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", "ok")})
    found = load_campaign(config, "c")
    assert render_message(config, found, contact(), ORDER, "o-1", NOW).text == (
        "Liebe Frau Schmidt,\n\nok"
    )
    worker = isolation._worker[0]
    assert worker.spawned
    cmdline = Path(f"/proc/{worker.pid}/cmdline").read_bytes().split(b"\0")
    assert b"-c" in cmdline  # its own interpreter, not a copy of this process
    # the bounds hold in it too: its memory is counted from its own start
    config = setup(workspace, {"m.de.j2": email("Hallo", GREEDY)})
    with pytest.raises(TemplateError, match="rendering needed more than"):
        render_message(config, load_campaign(config, "c"), contact(), ORDER, "o-1", NOW)


def test_a_worker_started_with_one_thread_is_a_fork(workspace: Workspace) -> None:
    isolation._retire()
    isolation.start()
    if threading.active_count() == 1:
        assert not isolation._worker[0].spawned
    config = setup(workspace, {"m.de.j2": email("Hallo", "ok")})
    assert render_message(config, load_campaign(config, "c"), contact(), ORDER, "o", NOW).text


def test_a_template_changed_between_batches_is_read_again(workspace: Workspace) -> None:
    config = setup(workspace, {"m.de.j2": email("Hallo", "vorher")})
    found = load_campaign(config, "c")
    assert render_messages(config, found, jobs("a"), NOW)[0] == render_message(
        config, found, contact(id="a"), ORDER, "o-a", NOW
    )
    path = workspace.root / "templates" / "m.de.j2"
    before = path.stat().st_mtime_ns
    path.write_text(email("Hallo", "nachher"), encoding="utf-8")
    if path.stat().st_mtime_ns == before:  # a coarse clock: the change must show
        os.utime(path, ns=(before + 10**9, before + 10**9))
    (message,) = render_messages(config, found, jobs("a"), NOW)
    assert isinstance(message, Message) and message.text == "Liebe Frau Schmidt,\n\nnachher"


def freed_cap_shop(workspace: Workspace) -> tuple[Store, Config, Campaign]:
    """Three contacts with two orders each under a cap of one, and a campaign whose
    template fails for the first order (it has no note): the store, config and campaign."""
    text = workspace.config.read_text(encoding="utf-8")
    workspace.config.write_text(
        text.replace("[sender]", '[limits]\ncontact_max = 1\ncontact_window = "7d"\n[sender]')
    )
    workspace.write(
        "templates/t.j2",
        "{% block subject %}Hallo{% endblock %}{% block text %}{{ event.note }}{% endblock %}",
    )
    store = open_store(workspace.store_target)
    with store.write() as conn:
        for i in range(3):
            add_contact(conn, f"c{i}", first_name="Eva", consent_email=1)
            add_event(conn, f"o{i}a", f"c{i}", "2026-03-02T09:00:00Z", amount=5)  # no note
            add_event(conn, f"o{i}b", f"c{i}", "2026-03-02T10:00:00Z", amount=7, note="Rosen")
    config = load_config(workspace.config)
    thanks = campaign("thanks", {"type": "post_purchase"}, template="t")
    return store, config, thanks


@pytest.mark.parametrize(
    ("batch", "depth"), [(1000, 1), (3, 1), (2, 1), (1, 1), (3, 2), (2, 3), (1, 2), (1, 3)]
)
def test_a_render_error_in_a_batch_frees_the_cap_for_the_contacts_next_occasion(
    workspace: Workspace, batch: int, depth: int
) -> None:
    """Under a cap of one, a contact's first occasion that does not render is skipped
    (render_error) and counts for nothing, so the second occasion is pending: as when each
    message is rendered the moment it is decided. In one batch, and in batches whose
    messages render while the next batch is decided (batches of 3: every first occasion in
    the first batch, every second one in the next; of 2 and 1: some of either), one or
    several of them rendering at a time (``depth``: a batch is then decided before the
    errors of several batches before it are known)."""
    store, config, thanks = freed_cap_shop(workspace)
    with mock.patch.object(tick_module, "BATCH", batch):
        result = tick(store, config, [thanks], instant("2026-03-02T12:00:00Z"), depth=depth)
    rows: list[Any] = store.conn.execute(
        "SELECT contact_id, occasion, state, reason FROM deliveries ORDER BY contact_id, occasion"
    ).fetchall()
    assert [tuple(r) for r in rows] == [
        row
        for i in range(3)
        for row in (
            (f"c{i}", f"o{i}a", "skipped", "render_error"),
            (f"c{i}", f"o{i}b", "pending", None),
        )
    ]
    assert len(result.decisions) == 6
    messages = store.conn.execute(
        "SELECT message FROM deliveries WHERE state = 'pending' ORDER BY contact_id"
    ).fetchall()
    assert [json.loads(m[0])["text"].split("\n")[0] for m in messages] == ["Rosen"] * 3
    store.close()


@pytest.mark.parametrize(("batch", "depth"), [(2, 1), (1, 1), (1, 3)])
def test_a_render_error_frees_the_cap_in_the_batches_of_a_plan(
    workspace: Workspace, batch: int, depth: int
) -> None:
    """The decisions a plan keeps (with their messages) are the same in pipelined batches
    as in one: the cap a render error freed goes to the contact's next occasion."""
    store, config, thanks = freed_cap_shop(workspace)
    at = instant("2026-03-02T12:00:00Z")

    def planned(size: int, depth: int = 1) -> list[tuple[Any, ...]]:
        with store.rolled_back():
            result = tick_module.run_tick(store, config, [thanks], at, batch=size, depth=depth)
        return [
            (d.contact_id, d.occasion, d.decision, d.reason, d.message) for d in result.decisions
        ]

    whole = planned(1000)
    assert [(r[0], r[2], r[3]) for r in whole if r[1].endswith("b")] == [
        (f"c{i}", "pending", None) for i in range(3)
    ]
    assert planned(batch, depth) == whole
    store.close()


def test_a_batch_recorded_in_small_writes_records_the_same(workspace: Workspace) -> None:
    """The rows of a batch go in writes of at most WRITE_BYTES of messages (the write lock
    held for that much): one row a write records what one write for the batch records."""
    from test_tick_batches import capped_shop, decided

    capped_shop(workspace, 6)
    whole = decided(workspace, 1000)
    writes: list[int] = []
    store_write = Store.write

    def counting(self: Store, *args: Any, **kwargs: Any) -> Any:
        writes.append(1)
        return store_write(self, *args, **kwargs)

    with (
        mock.patch.object(tick_module, "WRITE_BYTES", 1),
        mock.patch.object(Store, "write", counting),
    ):
        assert decided(workspace, 1000) == whole
    pending = sum(1 for r in whole if r[3] == "pending")
    assert pending == 6 and len(writes) >= pending  # one write per message at least


NAMES = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=12)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    people=st.lists(
        st.fixed_dictionaries({
            "first_name": st.none() | NAMES | st.sampled_from(["anna", "Ærøskøbing", '"<&>\'"']),
            "last_name": st.none() | NAMES,
            "salutation": st.sampled_from([None, "Frau", "Herr", ""]),
            "locale": st.sampled_from(["de", "en", "fr", None]),
            "timezone": st.sampled_from(["Europe/Berlin", "America/New_York", None]),
            "last_order_at": st.sampled_from(["2025-09-01T10:00:00Z", "2025-12-31T23:30:00Z"]),
        }),
        min_size=1,
        max_size=4,
    ),
    marketing=st.booleans(),
)  # fmt: skip
def test_a_message_the_worker_stores_as_text_is_the_stored_message_as_json(
    workspace: Workspace, people: list[dict[str, Any]], marketing: bool
) -> None:
    """The JSON text the render worker makes of each message for its row is exactly the
    stored message the tick encoded itself before (:func:`message_text`): the starter
    layout (HTML, inlined CSS, the sender's footer), a marketing e-mail's link and headers,
    contacts of every locale, names with quotes, markup and letters beyond ASCII."""
    starter = Path(__file__).resolve().parent.parent / "templates"
    for name in ("_layout.j2", "_macros.j2", "win-back.j2", "win-back.de.j2"):
        workspace.write(f"templates/{name}", (starter / name).read_text(encoding="utf-8"))
    purpose = "marketing" if marketing else "service"
    workspace.write(
        "campaigns/w.toml",
        f'channel = "email"\npurpose = "{purpose}"\nprovider = "outbox"\ntemplate = "win-back"\n'
        '[trigger]\ntype = "inactivity"\nafter = "90d"\nevents = ["order"]\n',
    )
    config = load_config(workspace.config)
    found = load_campaign(config, "w")
    renderer = Renderer(config, Links("https://shop.example/r", "secret", "u@shop.example"))
    wanted = [
        Wanted(
            contact(id=f"c{n}", **person),
            Occasion(AT, f"c{n}", f"k:{n}", None, None),
            f"c{n}@example.com",
            None,
            f"d-{n}",
        )
        for n, person in enumerate(people)
    ]
    dicts = renderer.render_many(found, wanted, AT)
    texts = renderer.render_texts(found, wanted, AT)
    assert texts == [(message_text(m), e) for m, e in dicts]
    assert all(text is not None for text, _ in texts), texts  # the case is not vacuous


AT = instant("2026-01-06T10:00:00Z")


def _waits_for_a_request(pid: int) -> bool:
    """Whether the worker's rendering thread sleeps reading the next request (everything
    asked of it is rendered), as the kernel says."""
    try:
        where = Path(f"/proc/{pid}/wchan").read_text().strip()
    except OSError:
        return False
    return where.endswith("pipe_read") or where == "pipe_wait"  # not *pipe_write: answering


def test_a_request_sent_ahead_is_rendered_while_nobody_reads_and_collected_later(
    workspace: Workspace,
) -> None:
    """The worker renders a request whose answers overflow the pipe while the parent reads
    nothing (a tick records a batch meanwhile); a render asked in between collects the
    request before it first, and each gets its own answers."""
    if not Path("/proc/self/wchan").exists():
        pytest.skip("the kernel does not say where a process sleeps")
    long = "Zeile {{ contact.id }} " * 400  # ~5 kB a message: 400 overflow a 1 MB pipe
    config = setup(workspace, {"m.de.j2": email("Hallo {{ contact.id }}", long)})
    found = load_campaign(config, "c")
    ids = [f"k{n}" for n in range(400)]
    collect = isolation.send_stored(config, found, jobs(*ids), NOW, links=None)
    worker = isolation._worker[0]
    deadline = time.monotonic() + 60
    while not _waits_for_a_request(worker.pid):
        assert time.monotonic() < deadline, "the worker stopped before rendering all of them"
        time.sleep(0.05)
    between = render_messages(config, found, jobs("x"), NOW)
    assert [m.subject for m in between if isinstance(m, Message)] == ["Hallo x"]
    texts = collect()
    assert [json.loads(t)["subject"] for t in texts if isinstance(t, str)] == [
        f"Hallo {i}" for i in ids
    ]
    assert collect() == texts  # collected once, kept


def test_requests_sent_ahead_are_answered_in_order_each_its_own(workspace: Workspace) -> None:
    """Several requests in flight at once (a replay's batches): collecting a later one
    collects those before it first, and each gets its own answers, collected once."""
    config = setup(workspace, {"m.de.j2": email("Hallo {{ contact.id }}", "ok")})
    found = load_campaign(config, "c")
    groups = [[f"r{r}-{n}" for n in range(5 + r)] for r in range(3)]
    collects = [isolation.send_stored(config, found, jobs(*g), NOW, links=None) for g in groups]
    assert len(isolation._flying) == 3
    last = collects[2]()
    assert not isolation._flying  # the ones before it were read on the way
    for group, texts in zip(groups, [collects[0](), collects[1](), last], strict=True):
        assert [json.loads(t)["subject"] for t in texts if isinstance(t, str)] == [
            f"Hallo {i}" for i in group
        ]


@pytest.mark.parametrize("stop", ["kill", "hang", "kill, then send"])
def test_requests_in_flight_when_their_worker_ends_are_answered_by_a_fresh_one(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch, stop: str
) -> None:
    """A worker that ends (killed) or stops answering (it times out) with several
    requests in flight: each request is asked again of a fresh worker, in order, and gets
    its own answers (killed and read: but the message it was given first, which, as far
    as this process knows, ended it); a request sent after that goes to the fresh worker
    behind them."""
    monkeypatch.setattr(isolation, "MAX_RENDER_SECONDS", 1.0)
    config = setup(workspace, {"m.de.j2": email("Hallo {{ contact.id }}", "ok")})
    found = load_campaign(config, "c")
    isolation.render_messages(config, found, jobs("warm"), NOW)  # the worker runs
    stuck = isolation._worker[0].pid
    os.kill(stuck, signal.SIGSTOP)  # it reads no request while the three are sent
    groups = [[f"s{r}-{n}" for n in range(4)] for r in range(3)]
    collects = [isolation.send_stored(config, found, jobs(*g), NOW, links=None) for g in groups]
    try:
        if stop.startswith("kill"):
            os.kill(stuck, signal.SIGKILL)
            os.waitpid(stuck, 0)
        if stop == "kill, then send":  # sent to the worker that ended: the three go first
            groups.append(["next"])
            collects.append(isolation.send_stored(config, found, jobs("next"), NOW, links=None))
        second = collects[1]()
        assert isolation._worker[0].pid != stuck
        after = isolation.send_stored(config, found, jobs("late"), NOW, links=None)
        answers = [collects[0](), second, *(c() for c in collects[2:]), after()]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(stuck, signal.SIGKILL)
    if stop == "kill":  # the message it was reading when it ended is refused
        # (with a request sent first, the send finds the worker gone: all asked again)
        refused = answers[0].pop(0)
        assert isinstance(refused, TemplateError)
        assert "ended before it answered" in str(refused)
        groups[0].pop(0)
    for group, texts in zip([*groups, ["late"]], answers, strict=True):
        assert [json.loads(t)["subject"] for t in texts if isinstance(t, str)] == [
            f"Hallo {i}" for i in group
        ]
