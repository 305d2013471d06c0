"""Dispatch throughput of 1, 2 and 3 daemons on one PostgreSQL store, beside one daemon on
SQLite, in the same run, against a sink that takes 50 ms to answer.

    python bench/bench_daemons.py                       # 2,000 deliveries, concurrency 4
    python bench/bench_daemons.py --deliveries 4000 --concurrency 8 --latency 0.05
    python bench/bench_daemons.py --pg-url postgresql://regard@db/regard_bench

The sink is an asyncio HTTP/1.1 server in its own process that waits ``--latency`` seconds
before it answers 200 to each POST (a provider's API across the internet), and notes each
request's Idempotency-Key and the instant it answered. For each setup a fresh store is
made (a SQLite file; a fresh database of a private PostgreSQL cluster started with the
distribution's server, as the tests do, unless ``--pg-url`` names a server whose
databases the script may create), the daemons (``regard daemon``, ticking every second,
webhook adapter) are started and registered, and then the backlog is written, due at once.
Throughput is the deliveries divided by the time from the sink's first answer to its last;
``wall`` is the time from the backlog's commit until every delivery is ``sent``. Every
delivery must be sent once (no key twice at the sink). Goal: three daemons on PostgreSQL
send at least 2.5 times as many per second as one daemon on SQLite.

``--old DIR`` (a tree of an older regard, e.g. ``git archive main | tar -x -C DIR``) runs
every setup twice, the daemons on the older code and on this one, alternating, so the two
are compared under the same load. CPU is measured too (the machine is shared, wall times
move with it): the daemons' own CPU and the PostgreSQL server's (its backends), in
milliseconds per delivery.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.connection
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
# REGARD_BENCH_SRC: this process speaks to the store with another tree's code (--old runs
# each of its setups in such a child, so that no newer migration touches its store)
sys.path.insert(0, os.environ.get("REGARD_BENCH_SRC") or str(ROOT / "src"))

from regard.engine import delivery_id  # noqa: E402
from regard.store import open_store  # noqa: E402
from regard.times import Instant, now_instant  # noqa: E402

SECRET = "bench-secret"


def serve(port_out: multiprocessing.connection.Connection, latency: float, log: str) -> None:
    """The sink: read a request, wait ``latency``, answer 200 and note key and instant."""
    notes = open(log, "a", encoding="utf-8", buffering=1)  # noqa: SIM115

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, key = 0, ""
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                    elif name.lower() == b"idempotency-key":
                        key = value.strip().decode()
                await reader.readexactly(length)
                await asyncio.sleep(latency)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
                notes.write(f"{key} {time.monotonic():.6f}\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def workspace(root: Path, store: str, url: str, concurrency: int) -> Path:
    config = root / "regard.toml"
    config.write_text(
        f'store = "{store}"\n[scheduler]\ninterval = "1s"\n'
        f'[delivery]\nconcurrency = {concurrency}\ntimeout = "10s"\nlease = "5m"\n'
        f'[providers.sink]\ntype = "webhook"\nurl = "{url}"\nsecret = "{SECRET}"\n',
        encoding="utf-8",
    )
    campaign_files(root)
    return config


def campaign_files(root: Path) -> None:
    """The backlog's campaign and template: a delivery whose campaign file is gone is
    never sent."""
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "campaigns" / "bench.toml").write_text(
        'channel = "webhook"\nprovider = "sink"\ntemplate = "bench"\n'
        '[trigger]\ntype = "event"\nevent = "no-event-has-this-type"\n',
        encoding="utf-8",
    )
    (root / "templates" / "bench.j2").write_text(
        "{% block text %}Danke!{% endblock %}", encoding="utf-8"
    )


def backlog(target: str | Path, n: int, due: Instant) -> None:
    """``n`` pending webhook deliveries, due at ``due``, in one transaction."""
    with open_store(target) as store, store.write() as conn:
        conn.executemany(
            "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider, "
            "state, due_at, created_at, not_before, message, updated_at) "
            "VALUES (?, 'bench', ?, 'o1', 'webhook', 'sink', 'pending', ?, ?, ?, ?, ?)",
            [
                (
                    delivery_id("bench", f"c{i}", "o1", due),
                    f"c{i}",
                    due,
                    due,
                    due,
                    json.dumps({"to": None, "subject": None, "text": f"Danke, c{i}!"}),
                    due,
                )
                for i in range(n)
            ],
        )


def count(target: str | Path, sql: str) -> int:
    with open_store(target) as store:
        return int(store.conn.execute(sql).fetchone()[0])


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of the processes ``pids`` so far (those gone count 0)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def server_pids(postmaster: int | None) -> list[int]:
    """The PostgreSQL server's processes: the postmaster's children (backends)."""
    if postmaster is None:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == postmaster:
                found.append(int(entry.name))
    return found


def measure(
    target: str | Path,
    daemons: int,
    n: int,
    concurrency: int,
    url: str,
    notes: Path,
    src: Path = ROOT / "src",
    postmaster: int | None = None,
) -> dict[str, Any]:
    """Start ``daemons`` daemons (of the code in ``src``) on ``target``, then write the
    backlog; until all sent."""
    with tempfile.TemporaryDirectory(prefix="regard-bench-daemons-") as tmp:
        config = workspace(Path(tmp), str(target), url, concurrency)
        with open_store(target):
            pass  # made and migrated before the daemons race to it
        env = {**os.environ, "PYTHONPATH": str(src)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "regard", "--config", str(config), "daemon"],
                stdout=subprocess.DEVNULL,
                stderr=(Path(tmp) / f"daemon{k}.log").open("wb"),
                env=env,
            )
            for k in range(daemons)
        ]
        try:
            deadline = time.monotonic() + 60
            while True:
                with open_store(target) as store:
                    if len(store.daemons.live(now_instant())) >= daemons:
                        break
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    logs = [(Path(tmp) / f"daemon{k}.log").read_text() for k in range(daemons)]
                    raise SystemExit(f"the daemons did not start: {logs}")
                time.sleep(0.2)
            notes.write_text("", encoding="utf-8")
            pids = [p.pid for p in procs]
            servers = server_pids(postmaster)
            cpu_before = cpu_seconds(pids), cpu_seconds(servers)
            backlog(target, n, Instant(now_instant() - 60))
            began = time.monotonic()
            sent_sql = "SELECT count(*) FROM deliveries WHERE state = 'sent'"
            deadline = time.monotonic() + 30 + 5 * n / concurrency
            while (sent := count(target, sent_sql)) < n:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {sent} of {n} sent in time")
                time.sleep(0.1)
            wall = time.monotonic() - began
            servers = sorted(set(servers) | set(server_pids(postmaster)))
            daemon_cpu = cpu_seconds(pids) - cpu_before[0]
            server_cpu = cpu_seconds(servers) - cpu_before[1]
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(timeout=60)
        hits = [line.split() for line in notes.read_text(encoding="utf-8").splitlines()]
        keys = Counter(key for key, _ in hits)
        times = sorted(float(t) for _, t in hits)
        span = times[-1] - times[0] if len(times) > 1 else wall
        assert len(keys) == n and max(keys.values()) == 1, "a delivery was sent twice or lost"
        return {
            "daemons": daemons,
            "sent": n,
            "per_second": round(n / span, 1),
            "wall_per_second": round(n / wall, 1),
            "daemon_cpu_ms_per_delivery": round(1000 * daemon_cpu / n, 2),
            "server_cpu_ms_per_delivery": round(1000 * server_cpu / n, 2),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--pg-url", default=None, help="a server whose databases may be made")
    parser.add_argument("--old", type=Path, default=None, help="an older tree to compare with")
    parser.add_argument("--measure-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure_child:  # one setup, in the code of REGARD_BENCH_SRC
        spec = json.loads(args.measure_child)
        spec["notes"], spec["src"] = Path(spec["notes"]), Path(spec["src"])
        print(json.dumps(measure(**spec)))
        return

    cluster = None
    postmaster = None
    if args.pg_url is None:
        import pg

        cluster = pg.cluster()
        postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    tmp = Path(tempfile.mkdtemp(prefix="regard-bench-"))
    notes = tmp / "sink.log"
    receive, send = multiprocessing.Pipe(duplex=False)
    sink = multiprocessing.Process(target=serve, args=(send, args.latency, str(notes)), daemon=True)
    sink.start()
    url = f"http://127.0.0.1:{receive.recv()}/hook"
    codes = [("new", ROOT / "src")]
    if args.old is not None:
        codes.insert(0, ("old", args.old.resolve() / "src"))
    runs: list[dict[str, Any]] = []
    made = 0
    try:
        setups = [("sqlite", 1), ("postgresql", 1), ("postgresql", 2), ("postgresql", 3)]
        for store, daemons in setups:
            for code, src in codes:  # old and new beside each other, under the same load
                made += 1
                target: str | Path
                if store == "sqlite":
                    target = tmp / f"regard-{made}.db"
                elif cluster is not None and code == "new":
                    target = cluster.database()  # from the template this code migrated
                elif cluster is not None:  # empty: the old code migrates it its own way
                    cluster._admin(f"CREATE DATABASE regard_old_{made}")
                    target = cluster.url(f"regard_old_{made}")
                else:
                    target = fresh_database(args.pg_url, f"regard_bench_{os.getpid()}_{made}")
                spec = {
                    "target": str(target), "daemons": daemons, "n": args.deliveries,
                    "concurrency": args.concurrency, "url": url, "notes": str(notes),
                    "src": str(src), "postmaster": postmaster if store == "postgresql" else None,
                }  # fmt: skip
                if code == "new":
                    result = measure(**{**spec, "notes": notes, "src": src})
                else:  # the store made and read by the old code only
                    result = json.loads(
                        subprocess.run(
                            [sys.executable, __file__, "--measure-child", json.dumps(spec)],
                            check=True, capture_output=True, text=True,
                            env={**os.environ, "REGARD_BENCH_SRC": str(src)},
                        ).stdout.strip().splitlines()[-1]
                    )  # fmt: skip
                runs.append({"code": code, "store": store, **result})
                print(json.dumps(runs[-1]), file=sys.stderr)
    finally:
        sink.kill()
    for code, _ in codes:
        mine = [r for r in runs if r["code"] == code]
        baseline = mine[0]["per_second"]
        for run in mine:
            run["ratio_to_sqlite"] = round(run["per_second"] / baseline, 2)
    last = [r for r in runs if r["code"] == "new"][-1]
    report = {
        "deliveries": args.deliveries,
        "concurrency_per_daemon": args.concurrency,
        "sink_latency_s": args.latency,
        "runs": runs,
        "goal_three_daemons_ratio": 2.5,
        "met": last["ratio_to_sqlite"] >= 2.5,
    }
    print(json.dumps(report, indent=2))
    print(table(runs), file=sys.stderr)


def table(runs: list[dict[str, Any]]) -> str:
    """The runs as a Markdown table: old beside new per setup."""
    lines = [
        "| store | daemons | code | deliveries/s | × SQLite 1 | daemon CPU ms/d | server CPU ms/d |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for r in runs:
        lines.append(
            f"| {r['store']} | {r['daemons']} | {r['code']} | {r['per_second']} "
            f"| {r['ratio_to_sqlite']} | {r['daemon_cpu_ms_per_delivery']} "
            f"| {r['server_cpu_ms_per_delivery']} |"
        )
    return "\n".join(lines)


def fresh_database(server: str, name: str) -> str:
    """A new database ``name`` on the server of ``server``; returns its URL."""
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")  # type: ignore[arg-type]
    base, _, _ = server.rpartition("/")
    return f"{base}/{name}"


if __name__ == "__main__":
    main()
