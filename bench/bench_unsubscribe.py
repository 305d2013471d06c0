"""One-click unsubscribes through ``regard serve`` while ``regard daemon`` ticks on the same
store, beside a bare Starlette/uvicorn endpoint doing one SQLite insert per request, in the
same run.

    python bench/bench_unsubscribe.py                       # 4,000 requests, 50 clients
    python bench/bench_unsubscribe.py --requests 10000 --clients 50

regard: a store of N contacts, each with one sent marketing e-mail; ``regard daemon`` with a
``[server]`` table (the server on its thread beside the scheduler, which ticks every
second on the same store); every request is ``POST /u/<token>`` with RFC 8058's
``List-Unsubscribe=One-Click`` body, for a different delivery each: the token is verified,
the delivery and contact looked up, the unsubscribe written and committed before the 200
page. The baseline: a bare Starlette app on uvicorn whose endpoint inserts one row into a
WAL-mode SQLite file per request and answers 200. The clients (httpx, asyncio, 50 at
once) run in this process against each server in turn. Goal: regard at least half the
baseline's rate, p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from regard.render.unsubscribe import make_token  # noqa: E402
from regard.store import open_store  # noqa: E402

BASELINE = """
import sqlite3, sys
import uvicorn
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

conn = sqlite3.connect(sys.argv[2], isolation_level=None, check_same_thread=False)
conn.execute("PRAGMA journal_mode = WAL")
conn.execute("PRAGMA synchronous = NORMAL")
conn.execute("CREATE TABLE IF NOT EXISTS hits (token TEXT, at REAL)")

async def hit(request):
    await request.body()
    conn.execute("INSERT INTO hits VALUES (?, julianday('now'))", (request.path_params["t"],))
    return HTMLResponse("<p>ok</p>")

app = Starlette(routes=[Route("/u/{t}", hit, methods=["POST"])])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT / "src")
    return e


def workspace(root: Path, contacts: int, port: int) -> list[str]:
    """A workspace whose store has ``contacts`` contacts with one sent marketing e-mail
    each; returns the unsubscribe paths."""
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "templates" / "note.j2").write_text(
        "{% block subject %}x{% endblock %}{% block text %}Hallo{% endblock %}", encoding="utf-8"
    )
    (root / "campaigns" / "thanks.toml").write_text(
        'channel = "email"\nprovider = "outbox"\ntemplate = "note"\n'
        '[trigger]\ntype = "post_purchase"\n',
        encoding="utf-8",
    )
    (root / "regard.toml").write_text(
        'store = "regard.db"\n[scheduler]\ninterval = "1s"\n'
        f'[server]\nlisten = "127.0.0.1:{port}"\n'
        '[providers.outbox]\ntype = "file"\npath = "outbox.jsonl"\n',
        encoding="utf-8",
    )
    store = open_store(root / "regard.db")
    secret = store.settings.server_secret()
    ids = [f"d_{i:032x}" for i in range(contacts)]
    with store.write() as conn:
        conn.executemany(
            "INSERT INTO contacts (id, email, locale, consent_email, created_at, updated_at) "
            "VALUES (?, ?, 'de', 1, 0, 0)",
            [(f"c{i}", f"c{i}@example.com") for i in range(contacts)],
        )
        conn.executemany(
            "INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider, "
            "state, priority, due_at, created_at, sent_at, updated_at, purpose) "
            "VALUES (?, 'thanks', ?, 'o', 'email', 'outbox', 'sent', 0, 0, 0, 0, 0, 'marketing')",
            [(d, f"c{i}") for i, d in enumerate(ids)],
        )
    store.close()
    return [f"/u/{make_token(secret, d)}" for d in ids]


def wait_healthy(url: str, process: subprocess.Popen[bytes], probe: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited {process.returncode}")
        try:
            httpx.post(url + probe, timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the server did not come up")


async def hammer(base: str, paths: list[str], clients: int) -> tuple[float, list[float], int]:
    """POST every path, ``clients`` at a time; (seconds, latencies in ms, non-200s)."""
    latencies: list[float] = []
    failures = 0
    queue = iter(paths)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal failures
            for path in queue:
                began = time.perf_counter()
                answer = await client.post(
                    path,
                    content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                latencies.append((time.perf_counter() - began) * 1000)
                failures += answer.status_code != 200

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        return time.perf_counter() - began, latencies, failures


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=50)
    args = parser.parse_args()
    results: dict[str, tuple[float, float, float, int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # the baseline
        port = free_port()
        (root / "baseline.py").write_text(BASELINE, encoding="utf-8")
        bare = subprocess.Popen(
            [sys.executable, str(root / "baseline.py"), str(port), str(root / "bare.db")],
            env=env(),
        )
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, bare, "/u/warmup")
            seconds, lat, failed = asyncio.run(
                hammer(base, [f"/u/t{i}" for i in range(args.requests)], args.clients)
            )
            results["bare Starlette + 1 insert"] = (
                args.requests / seconds, statistics.median(lat), p99(lat), failed,
            )  # fmt: skip
        finally:
            bare.send_signal(signal.SIGTERM)
            bare.wait(30)
        # regard daemon with its server, ticking every second on the same store
        port = free_port()
        shop = root / "shop"
        shop.mkdir()
        paths = workspace(shop, args.requests, port)
        log = (shop / "daemon.log").open("wb")
        daemon = subprocess.Popen(
            [sys.executable, "-m", "regard", "--config", str(shop / "regard.toml"), "daemon",
             "--log-format", "json"],
            env=env(), stderr=log, stdout=subprocess.DEVNULL, cwd=shop,
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            wait_healthy(base, daemon, "/healthz")
            seconds, lat, failed = asyncio.run(hammer(base, paths, args.clients))
            results["regard serve (in regard daemon)"] = (
                args.requests / seconds, statistics.median(lat), p99(lat), failed,
            )  # fmt: skip
        finally:
            daemon.send_signal(signal.SIGTERM)
            code = daemon.wait(60)
            log.close()
        ticks = sum(
            1
            for line in (shop / "daemon.log").read_text().splitlines()
            if line.startswith("{") and json.loads(line).get("event") == "tick"
        )
        store = open_store(shop / "regard.db")
        unsubscribed = store.conn.execute(
            "SELECT count(*) FROM suppressions WHERE source = 'link'"
        ).fetchone()[0]
        store.close()
    bare_rate = results["bare Starlette + 1 insert"][0]
    print(f"{args.requests} requests, {args.clients} concurrent clients")
    print(f"{'server':<34} {'req/s':>8} {'ratio':>6} {'p50 ms':>7} {'p99 ms':>7} {'non-200':>8}")
    for name, (rate, p50, high, failed) in results.items():
        print(f"{name:<34} {rate:8.1f} {rate / bare_rate:6.2f} {p50:7.1f} {high:7.1f} {failed:8d}")
    print(f"daemon ticks during the run: {ticks}; unsubscribes recorded: {unsubscribed}; "
          f"daemon exit status {code}")  # fmt: skip


if __name__ == "__main__":
    main()
