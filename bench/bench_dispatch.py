"""Dispatch throughput: a 10,000-delivery backlog sent to a loopback sink through
``regard run``, next to a bare httpx client sending the same requests at the same
concurrency, in the same run.

    python bench/bench_dispatch.py                  # 10,000 deliveries, concurrency 8
    python bench/bench_dispatch.py --deliveries 2000 --concurrency 16

The sink is a minimal asyncio HTTP/1.1 server in its own process (so it never competes
with the sender for the GIL) that answers 200 to every POST. regard sends through the
webhook adapter (signature, Idempotency-Key) and persists every state change (a claim per
batch, one transaction per outcome, a log line each); the bare client sends the very same
bodies and headers, precomputed, and persists nothing. Goal: regard reaches at least half
the bare client's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from bench_daemons import backlog, campaign_files  # noqa: E402
from regard.providers import build_provider  # noqa: E402
from regard.store import open_store  # noqa: E402
from regard.store.records import delivery_record  # noqa: E402
from regard.workspace import load_config  # noqa: E402

DUE_AT = 1_780_000_000
SECRET = "bench-secret"


def serve(port_out: multiprocessing.connection.Connection) -> None:
    """The sink: read one request (headers, then Content-Length bytes), answer 200; loop."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def workspace(root: Path, url: str, concurrency: int, n: int) -> Path:
    config = root / "regard.toml"
    config.write_text(
        f'store = "regard.db"\n[delivery]\nconcurrency = {concurrency}\n'
        f'[providers.sink]\ntype = "webhook"\nurl = "{url}"\nsecret = "{SECRET}"\n',
        encoding="utf-8",
    )
    campaign_files(root)
    backlog(root / "regard.db", n, DUE_AT)
    return config


def bare_requests(config_path: Path) -> list[tuple[bytes, dict[str, str]]]:
    """The bodies and headers regard would send, built up front."""
    config = load_config(config_path)
    provider = build_provider("sink", config)
    store = open_store(config.store_path)
    rows = store.conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
    store.close()
    client = httpx.AsyncClient()
    out = []
    for row in rows:
        record = delivery_record(row)
        request = provider.build_request(record, client)  # type: ignore[attr-defined]
        headers = dict(request.headers)
        headers["Idempotency-Key"] = record["delivery_id"]
        out.append((request.content, headers))
    return out


async def bare_client(
    url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> float:
    """Seconds to send every request, ``concurrency`` at a time, through one client."""
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:

        async def one(body: bytes, headers: dict[str, str]) -> None:
            async with gate:
                response = await client.post(url, content=body, headers=headers)
                assert response.status_code == 200

        started = time.perf_counter()
        await asyncio.gather(*(one(b, h) for b, h in requests))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    receive, send = multiprocessing.Pipe(duplex=False)
    sink = multiprocessing.Process(target=serve, args=(send,), daemon=True)
    sink.start()
    url = f"http://127.0.0.1:{receive.recv()}/hook"
    try:
        with tempfile.TemporaryDirectory(prefix="regard-bench-") as tmp:
            config = workspace(Path(tmp), url, args.concurrency, args.deliveries)
            requests = bare_requests(config)
            bare = asyncio.run(bare_client(url, requests, args.concurrency))
            started = time.perf_counter()
            run = subprocess.run(
                [sys.executable, "-m", "regard", "--config", str(config), "run", "--json",
                 "--at", "2026-06-01T00:00:00Z"],
                capture_output=True, text=True, check=True,
                env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""},
            )  # fmt: skip
            wall = time.perf_counter() - started
            summary = json.loads(run.stdout)
            store = open_store(Path(tmp) / "regard.db")
            sent = store.conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'sent'"
            ).fetchone()[0]
            logged = store.conn.execute("SELECT count(*) FROM delivery_log").fetchone()[0]
            store.close()
    finally:
        sink.kill()
    assert sent == args.deliveries == summary["sent"], (sent, summary)
    dispatch_seconds = summary["duration"]
    report = {
        "deliveries": args.deliveries,
        "concurrency": args.concurrency,
        "bare_httpx_per_second": round(args.deliveries / bare, 1),
        "regard_dispatch_per_second": round(args.deliveries / dispatch_seconds, 1),
        "regard_run_wall_per_second": round(args.deliveries / wall, 1),
        "ratio_dispatch_to_bare": round(bare / dispatch_seconds, 3),
        "ratio_run_wall_to_bare": round(bare / wall, 3),
        "state_changes_logged": logged,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
