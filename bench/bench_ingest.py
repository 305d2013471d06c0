"""Shopify ``orders/create`` webhooks per second and their latency through ``regard serve``
while ``regard daemon`` ticks on the same store, beside a bare Starlette/uvicorn endpoint
that verifies the same HMAC and inserts the same rows, in the same run.

    python bench/bench_ingest.py                        # 5,000 webhooks, 50 senders
    python bench/bench_ingest.py --webhooks 100000      # memory over a long run

Both servers run in their own process on 127.0.0.1; one load generator (httpx, 50
concurrent senders, bodies and signatures built up front) drives each in turn. regard
verifies, maps (contact and order, line items), upserts both, recomputes the contact's
derived facts and counts the webhook for ``status``, one transaction committed before the
200, while a daemon ticking every 2 s answers every order with a thank-you (a file
provider) on the same store. The bare endpoint verifies the same HMAC, parses the body and
upserts the same two rows in one transaction (WAL, synchronous=NORMAL, on one worker
thread, as regard does). Goal: regard ≥ 0.5x the bare rate, p99 < 500 ms, memory flat.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from regard.sources.base import hmac_base64  # noqa: E402

SECRET = "shpss_bench_0f3a"

BARE = textwrap.dedent(
    """
    import asyncio, base64, hashlib, hmac, json, sqlite3, sys
    from concurrent.futures import ThreadPoolExecutor
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    SECRET = sys.argv[3].encode()
    conn = sqlite3.connect(sys.argv[2], isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS contacts (id TEXT PRIMARY KEY, email TEXT,"
                 " first_name TEXT, last_name TEXT, city TEXT, country TEXT)")
    conn.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, contact_id TEXT,"
                 " occurred_at TEXT, amount REAL, currency TEXT, properties TEXT)")
    pool = ThreadPoolExecutor(max_workers=1)

    def store(order):
        c = order["customer"]
        a = c.get("default_address") or {}
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO contacts VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                     " SET email = excluded.email, first_name = excluded.first_name,"
                     " last_name = excluded.last_name, city = excluded.city,"
                     " country = excluded.country",
                     (str(c["id"]), c.get("email"), c.get("first_name"), c.get("last_name"),
                      a.get("city"), a.get("country_code")))
        items = [{"sku": i.get("sku"), "name": i.get("title"), "quantity": i.get("quantity"),
                  "price": float(i["price"])} for i in order.get("line_items", [])]
        conn.execute("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE"
                     " SET amount = excluded.amount, properties = excluded.properties",
                     (str(order["id"]), str(c["id"]), order["processed_at"],
                      float(order["current_total_price"]), order["currency"],
                      json.dumps({"name": order["name"], "items": items})))
        conn.execute("COMMIT")

    async def ingest(request):
        body = await request.body()
        digest = base64.b64encode(hmac.new(SECRET, body, hashlib.sha256).digest()).decode()
        if not hmac.compare_digest(digest, request.headers.get("x-shopify-hmac-sha256", "")):
            return JSONResponse({"error": "signature"}, status_code=401)
        order = json.loads(body)
        await asyncio.get_running_loop().run_in_executor(pool, store, order)
        return JSONResponse({"ok": True, "contacts": 1, "events": 1})

    app = Starlette(routes=[Route("/ingest/{name}", ingest, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                access_log=False)
    """
)

CAMPAIGN = """\
name = "Danke"
channel = "email"
provider = "outbox"
template = "thanks"
max_lateness = "30d"
[trigger]
type = "post_purchase"
"""
TEMPLATE = """\
{% block subject %}Danke{% endblock %}
{% block text %}Danke, {{ contact | greeting }}!{% endblock %}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def order(n: int, now: float) -> dict[str, object]:
    customer = 100_000 + n // 3  # three orders per customer
    at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 60))
    return {
        "id": 5_000_000 + n,
        "name": f"#{1000 + n}",
        "email": f"kunde{customer}@example.de",
        "created_at": at,
        "processed_at": at,
        "updated_at": at,
        "cancelled_at": None,
        "currency": "EUR",
        "current_total_price": "64.80",
        "total_price": "64.80",
        "financial_status": "paid",
        "fulfillment_status": None,
        "customer_locale": "de-DE",
        "line_items": [
            {"id": 1, "sku": "ROSE-12", "title": "Rosenstrauß", "quantity": 1, "price": "44.90"},
            {"id": 2, "sku": "VASE-S", "title": "Glasvase", "quantity": 1, "price": "19.90"},
        ],
        "customer": {
            "id": customer,
            "email": f"kunde{customer}@example.de",
            "first_name": "Jürgen",
            "last_name": "Müller",
            "phone": None,
            "email_marketing_consent": {"state": "subscribed"},
            "default_address": {
                "address1": "Lindenstraße 5",
                "address2": None,
                "zip": "10969",
                "city": "Berlin",
                "country_code": "DE",
                "company": None,
                "phone": None,
            },
        },
    }


def requests(n: int) -> list[tuple[bytes, dict[str, str]]]:
    now = time.time()
    out = []
    for i in range(n):
        body = json.dumps(order(i, now), ensure_ascii=False).encode()
        out.append(
            (
                body,
                {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": "orders/create",
                    "X-Shopify-Hmac-Sha256": hmac_base64(SECRET, body),
                },
            )
        )
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def load(
    url: str, reqs: list[tuple[bytes, dict[str, str]]], senders: int, pid: int
) -> dict[str, float]:
    """Send every request, ``senders`` at a time; rate, latency percentiles, memory."""
    latencies: list[float] = []
    memory: list[float] = []
    queue = iter(reqs)
    limits = httpx.Limits(max_connections=senders, max_keepalive_connections=senders)
    failed = 0
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def sender() -> None:
            nonlocal failed
            for body, headers in queue:
                began = time.perf_counter()
                try:
                    answer = await client.post(url, content=body, headers=headers)
                    ok = answer.status_code == 200
                except httpx.TransportError as exc:
                    print(f"transport error: {exc!r}", file=sys.stderr)
                    ok = False
                latencies.append(time.perf_counter() - began)
                failed += not ok
                if len(latencies) % 1000 == 0:
                    memory.append(rss_mib(pid))

        memory.append(rss_mib(pid))
        cpu = cpu_seconds(pid)
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(senders)))
        wall = time.perf_counter() - started
        cpu = cpu_seconds(pid) - cpu
        memory.append(rss_mib(pid))
    latencies.sort()

    def pct(p: float) -> float:
        return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1)

    return {
        "per_second": round(len(reqs) / wall, 1),
        "server_cpu_ms_per_webhook": round(cpu / len(reqs) * 1000, 2),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1),
        "failed": failed,
        "rss_start_mib": round(memory[0], 1),
        "rss_after_first_10pct_mib": round(memory[min(len(memory) - 1, len(memory) // 10)], 1),
        "rss_end_mib": round(memory[-1], 1),
    }


def wait_up(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited {process.returncode}")
        try:
            httpx.post(url, content=b"{}", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("server did not start")


def workspace(root: Path, port: int) -> tuple[Path, Path]:
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    (root / "campaigns" / "thanks.toml").write_text(CAMPAIGN, encoding="utf-8")
    (root / "templates" / "thanks.j2").write_text(TEMPLATE, encoding="utf-8")
    base = (
        'store = "regard.db"\nlocale = "de"\n[scheduler]\ninterval = "2s"\n'
        '[providers.outbox]\ntype = "file"\npath = "outbox.jsonl"\n'
        f'[sources.shop]\ntype = "shopify"\nsecret = "{SECRET}"\n'
    )
    daemon = root / "daemon.toml"
    daemon.write_text(base, encoding="utf-8")
    serve = root / "serve.toml"
    serve.write_text(base + f'[server]\nlisten = "127.0.0.1:{port}"\n', encoding="utf-8")
    return serve, daemon


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--webhooks", type=int, default=5_000)
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--log", default="bench-ingest-servers.log", help="the servers' log")
    args = parser.parse_args()
    reqs = requests(args.webhooks)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    report: dict[str, object] = {"webhooks": args.webhooks, "senders": args.senders}
    with tempfile.TemporaryDirectory(prefix="regard-bench-") as tmp:
        root = Path(tmp)
        port = free_port()
        bare = subprocess.Popen(
            [sys.executable, "-c", BARE, str(port), str(root / "bare.db"), SECRET], env=env
        )
        try:
            url = f"http://127.0.0.1:{port}/ingest/shop"
            wait_up(url, bare)
            report["bare"] = asyncio.run(load(url, reqs, args.senders, bare.pid))
        finally:
            bare.send_signal(signal.SIGTERM)
            bare.wait(20)

        port = free_port()
        (root / "ws").mkdir()
        serve_config, daemon_config = workspace(root / "ws", port)
        with Path(args.log).open("wb") as log:
            serve = subprocess.Popen(
                [sys.executable, "-m", "regard", "--config", str(serve_config), "serve"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            daemon = subprocess.Popen(
                [sys.executable, "-m", "regard", "--config", str(daemon_config), "daemon"],
                env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}/ingest/shop"
            wait_up(url, serve)
            report["regard"] = asyncio.run(load(url, reqs, args.senders, serve.pid))
            time.sleep(3)  # the daemon's next tick answers the last orders
        finally:
            serve.send_signal(signal.SIGTERM)
            daemon.send_signal(signal.SIGTERM)
            serve.wait(30)
            daemon.wait(60)
        db = sqlite3.connect(root / "ws" / "regard.db")
        report["stored_events"] = db.execute("SELECT count(*) FROM events").fetchone()[0]
        report["ticks"] = db.execute("SELECT count(*) FROM ticks").fetchone()[0]
        report["deliveries"] = db.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        db.close()
    bare_rate = report["bare"]["per_second"]  # type: ignore[index]
    regard_rate = report["regard"]["per_second"]  # type: ignore[index]
    report["ratio_regard_to_bare"] = round(regard_rate / bare_rate, 3)
    report["load_average"] = os.getloadavg()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
