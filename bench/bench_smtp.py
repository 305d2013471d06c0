"""SMTP throughput: a backlog of e-mail deliveries sent to a local aiosmtpd server through
``regard run`` (the smtp adapter), next to aiosmtplib alone sending the same messages at
the same concurrency, in the same run.

    python bench/bench_smtp.py                      # 2,000 deliveries, concurrency 8
    python bench/bench_smtp.py --deliveries 500 --concurrency 4

The sink is aiosmtpd in its own process (so it never competes with the sender for the
GIL); it accepts every mail and keeps nothing. regard builds each MIME message, keeps a
pool of ``concurrency`` connections and persists every state change (a claim per batch,
the outcomes in group commits, a log line each); the bare client sends the very same
message bytes, prebuilt, over ``concurrency`` connections it keeps open, and persists
nothing. Goal: regard reaches at least half the bare client's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import socket
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import aiosmtplib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from regard.engine import delivery_id  # noqa: E402
from regard.providers import build_provider  # noqa: E402
from regard.store import open_store  # noqa: E402
from regard.store.records import delivery_record  # noqa: E402
from regard.workspace import load_config  # noqa: E402

DUE_AT = 1_780_000_000


def serve(port: int, ready: Connection) -> None:
    """aiosmtpd on 127.0.0.1:port, accepting every mail and dropping it."""
    from aiosmtpd.controller import Controller

    class Accept:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 2.0.0 Ok: queued"

    controller = Controller(Accept(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.send(True)
    while True:
        time.sleep(3600)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def workspace(root: Path, port: int, concurrency: int, n: int) -> Path:
    config = root / "regard.toml"
    config.write_text(
        f'store = "regard.db"\n[sender]\nname = "Blumen Rosa GmbH"\n'
        f'email = "hallo@blumen-rosa.de"\n[delivery]\nconcurrency = {concurrency}\n'
        f'[providers.mailbox]\ntype = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
        f'tls = "none"\n',
        encoding="utf-8",
    )
    (root / "campaigns").mkdir()
    (root / "templates").mkdir()
    store = open_store(root / "regard.db")
    with store.write() as conn:
        conn.executemany(
            """
            INSERT INTO deliveries (id, campaign, contact_id, occasion, channel, provider,
                state, due_at, created_at, not_before, message, updated_at)
            VALUES (?, 'bench', ?, 'o1', 'email', 'mailbox', 'pending', ?, ?, ?, ?, ?)
            """,
            [
                (
                    delivery_id("bench", f"c{i}", "o1", DUE_AT),
                    f"c{i}",
                    DUE_AT,
                    DUE_AT,
                    DUE_AT,
                    json.dumps(
                        {
                            "to": f"kunde{i}@example.de",
                            "subject": f"Danke für Ihre Bestellung, Kundin {i}!",
                            "text": "Hallo, danke für Ihre Bestellung bei Blumen Rosa. " * 8,
                            "html": "<p>Hallo, danke für Ihre Bestellung bei Blumen Rosa.</p>" * 8,
                        }
                    ),
                    DUE_AT,
                )
                for i in range(n)
            ],
        )
    store.close()
    return config


def bare_messages(config_path: Path) -> list[tuple[str, bytes]]:
    """The recipients and message bytes regard would send, built up front."""
    config = load_config(config_path)
    provider = build_provider("mailbox", config)
    store = open_store(config.store_path)
    rows = store.conn.execute("SELECT * FROM deliveries ORDER BY id").fetchall()
    store.close()
    out = []
    for row in rows:
        record = delivery_record(row)
        message = provider.message_bytes(record)  # type: ignore[attr-defined]
        out.append((str(record["to"]), message))
    return out


async def bare_client(port: int, messages: list[tuple[str, bytes]], concurrency: int) -> float:
    """Seconds to send every message over ``concurrency`` connections kept open."""
    queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
    for item in messages:
        queue.put_nowait(item)

    async def connection() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
        await smtp.connect()
        try:
            while not queue.empty():
                to, data = queue.get_nowait()
                await smtp.sendmail("hallo@blumen-rosa.de", [to], data)
        finally:
            await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()

    port = free_port()
    receive, send = multiprocessing.Pipe(duplex=False)
    sink = multiprocessing.Process(target=serve, args=(port, send), daemon=True)
    sink.start()
    receive.recv()
    try:
        with tempfile.TemporaryDirectory(prefix="regard-bench-") as tmp:
            config = workspace(Path(tmp), port, args.concurrency, args.deliveries)
            messages = bare_messages(config)
            bare = asyncio.run(bare_client(port, messages, args.concurrency))
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
            store.close()
    finally:
        sink.kill()
    assert sent == args.deliveries, (sent, summary)
    dispatch_seconds = summary["duration"]
    report = {
        "deliveries": args.deliveries,
        "concurrency": args.concurrency,
        "message_bytes": len(messages[0][1]),
        "bare_aiosmtplib_per_second": round(args.deliveries / bare, 1),
        "regard_dispatch_per_second": round(args.deliveries / dispatch_seconds, 1),
        "regard_run_wall_per_second": round(args.deliveries / wall, 1),
        "ratio_dispatch_to_bare": round(bare / dispatch_seconds, 3),
        "ratio_run_wall_to_bare": round(bare / wall, 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
