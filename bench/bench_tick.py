"""Tick time against shop size: cost must follow what is due, not the size of the store.

    python bench/bench_tick.py                      # 100k and 1M contacts
    python bench/bench_tick.py --sizes 20000 200000 # smaller, for a quick look
    python bench/bench_tick.py --big-day            # 200k contacts, > 50,000 due in one tick
    python bench/bench_tick.py --big-day --baseline-src /path/to/older/src  # old beside new
    python bench/bench_tick.py --store postgresql   # the same shops, ticked on PostgreSQL too

The big day: the synthetic shop of ``generate.py --contacts 200000 --seed 1`` imported into a
starter workspace (``regard init``: its campaigns and templates, the HTML layout), with the
win-back switched on over a year of history (``max_lateness = "365d"``), ticked on
2026-01-06: every contact that lapsed in that year is due at once. Each tick runs in a child
process on a fresh copy of the store, beside a second process writing one row at a time as a
webhook would (``BEGIN IMMEDIATE``, an insert, ``COMMIT``, every 20 ms); the tick's time, its
peak RSS and that writer's worst wait for the lock are measured in the same run. With
``--baseline-src`` the same case runs first on another source tree (the code before a
change), so the ratio of the two is measured under the same load.

Each shop has about five events per contact. The first ``DUE`` contacts are the same in
every shop and carry everything that is due at T (a recent order, a lapse, a birthday, a
fifth order, a win-back sent 14 days ago that the follow-up card follows); the others are
history that is not due at T (orders long ago, birthdays on other days, win-backs sent
long ago). So the same number of occasions is due in every shop, and a tick's time at
1M must stay within 1.5× its time at 100k. Beside it, a naive per-contact loop in Python
over the same store. Each tick runs in a child process whose peak RSS is reported.

``--store postgresql``: each cached SQLite shop is copied once to a PostgreSQL database
with ``regard migrate-store --to`` (checked row for row) and the same ticks run on both
engines, alternating, in the same run: wall time, the tick's CPU (the child's, and on
PostgreSQL the CPU of the server process that served it), and the 1M / 100k ratio per
engine. The server is ``--pg-url`` (a database URL; databases ``regard_bench_<size>`` are
made beside it), else a private cluster of the distribution's PostgreSQL kept in
``<cache>/postgresql`` (made once, started for the run and stopped after it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

# REGARD_BENCH_SRC: measure another source tree (the code before a change) in the same run
sys.path.insert(
    0, os.environ.get("REGARD_BENCH_SRC") or str(Path(__file__).resolve().parent.parent / "src")
)

from regard.campaigns.model import Campaign
from regard.config import Config
from regard.store import open_store
from regard.store.derived import recompute_all

T = datetime(2026, 6, 15, 10, 0, tzinfo=UTC)
DUE = 2_000  # contacts with something due at T, identical in every shop
DAY = 86400
ZONES = ("Europe/Berlin", "Europe/Vienna", "America/New_York", None)

CAMPAIGNS = {
    "thank-you": {"trigger": {"type": "post_purchase", "delay": "2d"}},
    "win-back": {"trigger": {"type": "inactivity", "after": "90d"}, "audience": {"country": "DE"}},
    "birthday": {
        "trigger": {"type": "anniversary", "field": "birthday", "at": "09:00"},
        "window": {"hours": [8, 20]},
    },
    "vip": {
        "trigger": {"type": "milestone", "metric": "order_count", "threshold": 5},
        "priority": 5,
    },
    # a journey's second step: 14 days after the win-back was sent, unless they ordered
    "win-back-card": {
        "trigger": {"type": "followup", "campaign": "win-back", "delay": "14d"},
        "exit": {"event": "order"},
    },
}
TEMPLATE = """{% block subject %}Hallo {{ contact.first_name }}{% endblock %}
{% block text %}Danke, {{ contact.first_name }}! Bestellungen: {{ contact.order_count }}{% endblock %}
"""


def campaigns() -> list[Campaign]:
    loaded = []
    for campaign_id, data in CAMPAIGNS.items():
        model = Campaign.model_validate(
            {"channel": "email", "provider": "outbox", "template": "bench", **data}
        )
        model._id = campaign_id
        loaded.append(model)
    return loaded


def config(workspace: Path) -> Config:
    (workspace / "templates").mkdir(parents=True, exist_ok=True)
    (workspace / "templates" / "bench.j2").write_text(TEMPLATE, encoding="utf-8")
    path = workspace / "regard.toml"
    path.write_text(
        'timezone = "Europe/Berlin"\nstore = "shop.db"\n'
        '[limits]\ncontact_max = 3\n[providers.outbox]\ntype = "file"\npath = "outbox.jsonl"\n',
        encoding="utf-8",
    )
    from regard.workspace import load_config

    return load_config(path)


def generate(path: Path, size: int) -> None:
    """A shop of ``size`` contacts, five events each; only the first DUE have anything due."""
    now = int(T.timestamp())
    store = open_store(path)
    contacts, events, sent = [], [], []
    for i in range(size):
        rng = random.Random(i)
        due = i < DUE
        cid = f"c{i:07d}"
        if due:
            birthday = (T - timedelta(days=365 * rng.randint(20, 60))).date()
            birthday = birthday.replace(month=T.month, day=T.day) if i % 4 == 2 else birthday
        else:  # any day but the week around T
            offset = rng.randint(5, 360)
            birthday = (T + timedelta(days=offset)).date().replace(year=1980 + rng.randint(0, 40))
        contacts.append((
            cid, f"{cid}@example.com", 1, f"Kunde{i}", rng.choice(ZONES),
            rng.choice(("DE", "DE", "AT")), birthday.isoformat(), now - 800 * DAY, 0, 0,
        ))  # fmt: skip
        if due and i % 4 == 0:  # an order two to four days ago: thank-you
            times = [now - rng.randint(2 * DAY, 4 * DAY - 1)]
            times += [now - rng.randint(400, 700) * DAY for _ in range(4)]
        elif due and i % 4 == 1:  # last order just over 90 days ago: win-back
            times = [now - 90 * DAY - rng.randint(0, 2 * DAY - 1)]
            times += [now - rng.randint(400, 700) * DAY for _ in range(3)]
        elif due and i % 4 == 3:  # the fifth order two days ago (vip) ...
            times = [now - rng.randint(0, 2 * DAY - 1)]
            times += [now - rng.randint(400, 700) * DAY for _ in range(4)]
        else:  # history: long enough ago that nothing is due
            times = [now - rng.randint(300, 1000) * DAY for _ in range(5)]
        for n, at in enumerate(times):
            events.append((f"e{i:07d}-{n}", cid, "order", at, round(rng.uniform(10, 200), 2)))
        if (due and i % 8 == 2) or (not due and i % 3 == 0):
            # a sent win-back: 14 to 16 days ago (its card is due), else long ago
            ago = 14 * DAY + rng.randint(0, 2 * DAY - 1) if due else rng.randint(200, 600) * DAY
            sent.append((f"d_bench{i:07d}", "win-back", cid, f"since:{i}", "email", "outbox",
                         "sent", now - ago, now - ago, now - ago, now - ago))  # fmt: skip
        if len(events) > 200_000:
            _flush(store, contacts, events, sent)
    _flush(store, contacts, events, sent)
    with store.write() as conn:
        recompute_all(conn)
    store.conn.execute("ANALYZE")
    store.close()


def _flush(store, contacts: list, events: list, sent: list) -> None:
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO contacts (id, email, consent_email, first_name, timezone, country,"
            " birthday, signup_at, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
            contacts,
        )
        conn.executemany(
            "INSERT INTO events (id, contact_id, type, occurred_at, amount, imported_at)"
            " VALUES (?,?,?,?,?,0)",
            events,
        )
        conn.executemany(
            "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider,"
            " state, due_at, created_at, sent_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            sent,
        )
    contacts.clear()
    events.clear()
    sent.clear()


def child(workspace: Path, mode: str) -> None:
    """Run one measurement in this process and print it as JSON (with peak RSS)."""
    from regard.engine import plan
    from regard.engine.tick import run_tick
    from regard.times import to_epoch

    cfg = config(workspace)
    store = open_store(workspace / "shop.db")
    began = time.perf_counter()
    cpu = time.process_time()
    if mode == "tick":  # the tick itself, rolled back
        with store.rolled_back():
            found = len(run_tick(store, cfg, campaigns(), to_epoch(T)).decisions)
    elif mode == "plan":  # plan: the tick after replaying the sends follow-ups need
        found = len(plan(store, cfg, campaigns(), to_epoch(T)))
    else:
        found = naive(store, cfg)
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    from regard.render import isolation  # its render worker's CPU counts too

    isolation._retire()
    worker = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu += worker.ru_utime + worker.ru_stime
    print(json.dumps({"seconds": elapsed, "cpu_seconds": cpu, "occasions": found, "peak_mb": peak}))


def naive(store, cfg: Config) -> int:
    """The obvious way: every contact, its events, every campaign, in Python."""
    from zoneinfo import ZoneInfo

    now = int(T.timestamp())
    found = 0
    conn = store.conn
    for contact in conn.execute("SELECT * FROM contacts").fetchall():
        events = conn.execute(
            "SELECT * FROM events WHERE contact_id = ? AND occurred_at <= ? ORDER BY occurred_at",
            (contact["id"], now),
        ).fetchall()
        orders = [e for e in events if e["type"] == "order"]
        found += sum(1 for e in orders if now - 4 * DAY <= e["occurred_at"] <= now - 2 * DAY)
        for d in conn.execute(
            "SELECT sent_at FROM deliveries WHERE contact_id = ? AND campaign = 'win-back'"
            " AND state = 'sent'",
            (contact["id"],),
        ):
            due = d["sent_at"] + 14 * DAY
            found += now - 2 * DAY <= due <= now
        if orders and now - 2 * DAY <= orders[-1]["occurred_at"] + 90 * DAY <= now:
            found += contact["country"] == "DE"
        tz = ZoneInfo(contact["timezone"] or cfg.timezone)
        birthday = contact["birthday"]
        if birthday:
            due = datetime(T.year, int(birthday[5:7]), int(birthday[8:10]), 9, tzinfo=tz)
            found += now - 2 * DAY <= due.timestamp() <= now
        if len(orders) >= 5 and now - 2 * DAY <= orders[4]["occurred_at"] <= now:
            found += 1
    return found


BIG_DAY_AT = datetime(2026, 1, 6, 10, 0, tzinfo=UTC)
BIG_DAY_CONTACTS = 200_000


def big_day_workspace(cache: Path, contacts: int) -> Path:
    """A starter workspace holding the synthetic shop, its win-back over a year (cached)."""
    workspace = cache / f"big-day-{contacts}"
    store = workspace / "regard.db"
    if store.exists():
        return workspace
    began = time.perf_counter()
    regard = [sys.executable, "-m", "regard"]
    data = cache / f"big-day-{contacts}-files"
    repo = Path(__file__).resolve().parent
    subprocess.run([sys.executable, str(repo / "generate.py"), "--contacts", str(contacts),
                    "--seed", "1", "--out", str(data)], check=True)  # fmt: skip
    subprocess.run([*regard, "init", str(workspace)], check=True, capture_output=True)
    win_back = workspace / "campaigns" / "win-back.toml"
    win_back.write_text(
        win_back.read_text(encoding="utf-8").replace(
            'max_lateness = "7d"', 'max_lateness = "365d"'
        ),
        encoding="utf-8",
    )
    for kind in ("contacts", "events"):
        subprocess.run([*regard, "import", kind, str(data / f"{kind}.csv")], check=True,
                       cwd=workspace, capture_output=True)  # fmt: skip
    checkpoint = open_store(store)
    checkpoint.checkpoint()
    checkpoint.close()
    print(f"big day: workspace built in {time.perf_counter() - began:.0f} s", flush=True)
    return workspace


def big_day_child(workspace: Path) -> None:
    """One big-day tick on a fresh copy, beside a single-row writer; prints JSON."""
    import shutil

    from regard.campaigns.loader import load_campaigns
    from regard.engine import tick
    from regard.times import to_epoch
    from regard.workspace import load_config

    scratch = workspace / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    for name in ("regard.toml", "campaigns", "templates"):
        source = workspace / name
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, scratch / name)
    shutil.copy(workspace / "regard.db", scratch / "regard.db")
    cfg = load_config(scratch / "regard.toml")
    loaded = load_campaigns(cfg).campaigns
    store = open_store(scratch / "regard.db")
    stop = scratch / "stop"
    writer = subprocess.Popen(
        [sys.executable, __file__, "--writer", str(scratch / "regard.db"), str(stop)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    time.sleep(1.0)  # the writer is writing before the tick starts
    began = time.perf_counter()
    cpu = time.process_time()
    result = tick(store, cfg, loaded, to_epoch(BIG_DAY_AT))
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the render worker's share: it renders in a process of its own (regard.render.isolation);
    # ended and collected here, before the writer, so the children's figures are its alone
    from regard.render import isolation

    isolation._retire()
    worker = resource.getrusage(resource.RUSAGE_CHILDREN)
    worker_cpu = worker.ru_utime + worker.ru_stime
    stop.touch()
    waits = json.loads((writer.communicate()[0] or "{}").strip().splitlines()[-1])
    print(json.dumps({
        "seconds": elapsed, "cpu_seconds": cpu + worker_cpu, "tick_cpu_seconds": cpu,
        "worker_cpu_seconds": worker_cpu, "evaluated": result.evaluated,
        "decided": len(result.decisions), **result.counts, "peak_mb": peak,
        "worker_peak_mb": worker.ru_maxrss / 1024, **waits,
    }))  # fmt: skip


def writer(path: Path, stop: Path) -> None:
    """Insert one row per transaction every 20 ms until ``stop`` exists, as a webhook does;
    print the worst and the median wait for the write lock (and the number of writes)."""
    import sqlite3

    conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
    contact = conn.execute("SELECT id FROM contacts ORDER BY id LIMIT 1").fetchone()[0]
    waits: list[float] = []
    failed = 0  # gave up after 30 s (a webhook's caller would have long given up)
    n = 0
    while not stop.exists():
        n += 1
        began = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:  # database is locked
            failed += 1
            waits.append(time.perf_counter() - began)
            continue
        conn.execute(
            "INSERT INTO events (id, contact_id, type, occurred_at, imported_at)"
            " VALUES (?, ?, 'bench_webhook', ?, 0)",
            (f"bench-writer-{os.getpid()}-{n}", contact, 4_000_000_000 + n),
        )
        conn.execute("COMMIT")
        waits.append(time.perf_counter() - began)
        time.sleep(0.02)
    waits.sort()
    print(json.dumps({
        "writes": len(waits) - failed, "failed_writes": failed,
        "worst_wait": waits[-1] if waits else 0.0,
        "median_wait": waits[len(waits) // 2] if waits else 0.0,
    }))  # fmt: skip


def big_day(cache: Path, contacts: int, baseline_src: Path | None) -> None:
    workspace = big_day_workspace(cache, contacts)
    runs: list[tuple[str, Path | None]] = [("this tree", None)]
    if baseline_src is not None:
        runs.insert(0, ("baseline", baseline_src))
    results = {}
    for label, src in runs:
        env = dict(os.environ)
        if src is not None:
            env["REGARD_BENCH_SRC"] = str(src)
        out = subprocess.run(
            [sys.executable, __file__, "--big-day-child", str(workspace)],
            check=True, capture_output=True, text=True, env=env,
        ).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        results[label] = r
        print(
            f"big day ({label}): {r['seconds']:.1f} s ({r['cpu_seconds']:.1f} s CPU: tick "
            f"{r['tick_cpu_seconds']:.1f} s, render worker {r['worker_cpu_seconds']:.1f} s) for "
            f"{r['evaluated']:,} due occasions "
            f"({r['pending']:,} pending, {r['held_out']:,} held out, {r['skipped']:,} skipped),"
            f" peak {r['peak_mb']:.0f} MB (render worker {r['worker_peak_mb']:.0f} MB); a "
            "single-row writer beside it: worst wait "
            f"{r['worst_wait'] * 1000:.0f} ms, median {r['median_wait'] * 1000:.1f} ms over "
            f"{r['writes']} writes, {r['failed_writes']} failed after 30 s (goal: ≤ 20 s, ≤ 150 MB, worst wait ≤ 1 s)",
            flush=True,
        )
    if baseline_src is not None:
        old, new = results["baseline"], results["this tree"]
        print(f"big day: this tree / baseline: time {new['seconds'] / old['seconds']:.2f}, "
              f"CPU {new['cpu_seconds'] / old['cpu_seconds']:.2f} (tick "
              f"{new['tick_cpu_seconds'] / old['tick_cpu_seconds']:.2f}, render worker "
              f"{new['worker_cpu_seconds'] / max(old['worker_cpu_seconds'], 1e-9):.2f}), "
              f"peak RSS {new['peak_mb'] / old['peak_mb']:.2f}, "
              f"worst writer wait {new['worst_wait'] / max(old['worst_wait'], 1e-9):.4f}")  # fmt: skip


def measure(workspace: Path, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(workspace), mode],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


# -- on PostgreSQL (--store postgresql) -------------------------------------------------


class PgServer:
    """A private cluster kept in ``root`` (made on first use), started until ``stop``."""

    def __init__(self, root: Path) -> None:
        import socket

        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        import pg

        bindir = pg.server_bin()
        if bindir is None:
            raise SystemExit("no PostgreSQL server found (the distribution's `postgresql`)")
        self.bindir, self.root, self.data = bindir, root, root / "data"
        self.prefix: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root
            owner = os.environ.get("REGARD_TEST_PG_USER", "nobody")
            root.mkdir(parents=True, exist_ok=True)
            os.chown(root, *_ids(owner))
            self.prefix = ["runuser", "-u", owner, "--"]
        root.mkdir(parents=True, exist_ok=True)
        if not (self.data / "PG_VERSION").exists():
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                      "--encoding=UTF8", "--locale=C", "--no-sync")  # fmt: skip
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={root}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c shared_buffers=256MB -c max_wal_size=4GB"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(root / "server.log"),
                  "-o", options, "-w", "-t", "120", "start")  # fmt: skip
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, program: str, *args: str) -> None:
        subprocess.run([*self.prefix, str(self.bindir / program), *args], check=True,
                       capture_output=True, cwd=self.root)  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")


def _ids(user: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def pg_database(server: str, workspace: Path, size: int) -> str:
    """The database holding the shop of ``workspace``: made once by ``regard
    migrate-store --to`` from its SQLite store (kept while its copy was complete)."""
    import psycopg

    name = f"regard_bench_{size}"
    base, _, _ = server.rpartition("/")
    url = f"{base}/{name}"
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            with psycopg.connect(url) as db:
                done = db.execute("SELECT to_regclass('bench_copied') IS NOT NULL").fetchone()
            if done and done[0]:
                return url
            conn.execute(f'DROP DATABASE "{name}"')  # type: ignore[arg-type]
        conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
    config(workspace)  # the workspace's regard.toml
    began = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "regard", "--config", str(workspace / "regard.toml"),
         "migrate-store", "--to", url],
        check=True, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": sys.path[0]},
    )  # fmt: skip
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("ANALYZE")
        db.execute("CREATE TABLE bench_copied (at bigint)")  # the copy is complete
    print(f"copied {size:,} contacts to PostgreSQL in {time.perf_counter() - began:.1f}s")
    return url


def pg_child(workspace: Path, mode: str, target: str) -> None:
    """One tick (rolled back) on ``target`` (the SQLite file when ``-``) in this process;
    prints its wall time, this process's CPU and, on PostgreSQL, the CPU of the server
    process that served it (from /proc: the cluster runs on this machine)."""
    from regard.engine.tick import run_tick
    from regard.times import to_epoch

    cfg = config(workspace)
    store = open_store(workspace / "shop.db" if target == "-" else target)
    backend = None
    if store.dialect == "postgresql":
        backend = int(store.conn.execute("SELECT pg_backend_pid()").fetchone()[0])
    server_before = _proc_cpu(backend)
    cpu_before = time.process_time()
    began = time.perf_counter()
    with store.rolled_back():
        found = len(run_tick(store, cfg, campaigns(), to_epoch(T)).decisions)
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_before
    server = _proc_cpu(backend) - server_before
    print(json.dumps({"seconds": elapsed, "cpu": cpu, "server_cpu": server, "occasions": found}))


def _proc_cpu(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_main(sizes: list[int], cache: Path, pg_url: str | None, rounds: int) -> None:
    """Each size's tick on SQLite and on PostgreSQL, alternating, best of ``rounds``."""
    server = PgServer(cache / "postgresql") if pg_url is None else None
    try:
        url = server.url if server is not None else str(pg_url)
        targets: dict[int, str] = {}
        for size in sizes:
            workspace = cache / f"shop-{size}-journeys"
            if not (workspace / "shop.db").exists():
                raise SystemExit(f"{workspace}: no shop.db (run without --store first)")
            targets[size] = pg_database(url, workspace, size)
        best: dict[tuple[str, int], dict[str, float]] = {}
        for _ in range(rounds):
            for size in sizes:
                workspace = cache / f"shop-{size}-journeys"
                for engine, target in (("sqlite", "-"), ("postgresql", targets[size])):
                    out = subprocess.run(
                        [sys.executable, __file__, "--pg-child", str(workspace), "tick", target],
                        check=True, capture_output=True, text=True,
                    ).stdout  # fmt: skip
                    got = json.loads(out.strip().splitlines()[-1])
                    key = (engine, size)
                    if key not in best or got["seconds"] < best[key]["seconds"]:
                        best[key] = got
        for (engine, size), r in sorted(best.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"{engine:>10} {size:>9,} contacts: tick {r['seconds'] * 1000:8.1f} ms, "
                  f"CPU {r['cpu'] * 1000:7.1f} ms + server {r['server_cpu'] * 1000:7.1f} ms "
                  f"({r['occasions']} occasions)")  # fmt: skip
        small, large = sizes[0], sizes[-1]
        for engine in ("sqlite", "postgresql"):
            a, b = best[(engine, small)], best[(engine, large)]
            total = (b["cpu"] + b["server_cpu"]) / max(a["cpu"] + a["server_cpu"], 1e-9)
            print(f"{engine}: tick ratio {large:,} / {small:,}: time {b['seconds'] / a['seconds']:.2f}, "
                  f"CPU {total:.2f} (goal ≤ 1.5)")  # fmt: skip
        for size in sizes:
            s, p = best[("sqlite", size)], best[("postgresql", size)]
            print(f"{size:,}: PostgreSQL / SQLite: time {p['seconds'] / s['seconds']:.2f}")
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "regard-bench")
    parser.add_argument("--child", nargs=2, metavar=("WORKSPACE", "MODE"))
    parser.add_argument("--no-naive", action="store_true")
    parser.add_argument("--big-day", action="store_true", help="the big-day case only")
    parser.add_argument("--big-day-contacts", type=int, default=BIG_DAY_CONTACTS)
    parser.add_argument("--baseline-src", type=Path, help="run the big day on this src too")
    parser.add_argument("--big-day-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--writer", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--pg-url", help="with --store postgresql: a server to make databases on")
    parser.add_argument("--rounds", type=int, default=3, help="with --store postgresql")
    parser.add_argument("--pg-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pg_child:
        pg_child(Path(args.pg_child[0]), args.pg_child[1], args.pg_child[2])
        return
    if args.store == "postgresql":
        pg_main(args.sizes, args.cache, args.pg_url, args.rounds)
        return
    if args.child:
        child(Path(args.child[0]), args.child[1])
        return
    if args.writer:
        writer(*args.writer)
        return
    if args.big_day_child:
        big_day_child(args.big_day_child)
        return
    if args.big_day:
        big_day(args.cache, args.big_day_contacts, args.baseline_src)
        return
    results = {}
    for size in args.sizes:
        workspace = args.cache / f"shop-{size}-journeys"
        if not (workspace / "shop.db").exists():
            workspace.mkdir(parents=True, exist_ok=True)
            began = time.perf_counter()
            generate(workspace / "shop.db.tmp", size)
            (workspace / "shop.db.tmp").rename(workspace / "shop.db")
            print(f"generated {size:,} contacts in {time.perf_counter() - began:.1f}s")
        ticks = [measure(workspace, "tick") for _ in range(3)]
        best = min(ticks, key=lambda r: r["cpu_seconds"])  # CPU: the machine may be shared
        planned = measure(workspace, "plan")
        line = (
            f"{size:>9,} contacts: tick {best['cpu_seconds'] * 1000:7.1f} ms CPU"
            f" ({best['seconds'] * 1000:.1f} ms wall) "
            f"({best['occasions']} occasions, peak {max(t['peak_mb'] for t in ticks):.0f} MB); "
            f"plan with the journey replay {planned['seconds'] * 1000:7.1f} ms"
        )
        if not args.no_naive:
            slow = measure(workspace, "naive")
            line += f"; naive loop {slow['seconds']:.1f} s ({slow['occasions']} occasions)"
            best["naive"] = slow["seconds"]
        print(line, flush=True)
        results[size] = best
    if len(args.sizes) >= 2:
        small, large = results[args.sizes[0]], results[args.sizes[-1]]
        ratio = large["cpu_seconds"] / small["cpu_seconds"]
        print(f"tick CPU ratio {args.sizes[-1]:,} / {args.sizes[0]:,}: {ratio:.2f} (goal ≤ 1.5)")


if __name__ == "__main__":
    main()
