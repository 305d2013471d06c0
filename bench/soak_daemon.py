"""Soak: the real daemon ticking every second over a large store while orders keep arriving.

    python bench/soak_daemon.py                          # 100k contacts, 10 minutes
    python bench/soak_daemon.py --duration 3m --contacts 20000 --keep /tmp/soak

A starter workspace (the example campaigns, a file provider) gets a synthetic shop whose
history ends now, plus one campaign that answers every order at once over the webhook
channel. `regard daemon --log-format json` then runs as a subprocess with a one-second
interval while this script imports a batch of new orders every few seconds through the
real importer, and samples the daemon's resident memory. At the end it sends SIGTERM and
checks the books:

- every order imported during the soak has its delivery, sent once;
- every delivery the store calls sent is in the outbox exactly once, and the outbox holds
  nothing the store does not call sent (no duplicate, no loss);
- nothing is left in `sending`, and the daemon exited 0;
- memory at the end against memory after warm-up (no growth).

Prints a report and exits 1 if a check failed. Not part of CI.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from regard.store import open_store  # noqa: E402
from regard.store.importer import import_contacts, import_events  # noqa: E402
from regard.synthetic import generate  # noqa: E402
from regard.times import parse_duration  # noqa: E402
from regard.workspace import create_workspace, load_config  # noqa: E402

CAMPAIGN = """\
# every order answered at once: the soak's own traffic
name = "Order received"
channel = "webhook"
provider = "outbox"
template = "soak-order"
priority = 10
max_lateness = "1h"

[trigger]
type = "post_purchase"
"""
LOG = ("--log-format", "json")
TEMPLATE = "{% block text %}Order {{ occasion }} received, thank you!{% endblock %}\n"


def rss_kb(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def prepare(root: Path, contacts: int, seed: int) -> tuple[Path, float]:
    """A workspace with the example campaigns and a shop whose history ends today."""
    create_workspace(root)
    config_path = root / "regard.toml"
    text = config_path.read_text(encoding="utf-8")
    text = text.replace('interval = "5m"', 'interval = "1s"')
    text = text.replace("contact_max = 2", "contact_max = 0")  # every live order is answered
    config_path.write_text(text, encoding="utf-8")
    (root / "campaigns" / "soak-order.toml").write_text(CAMPAIGN, encoding="utf-8")
    (root / "templates" / "soak-order.j2").write_text(TEMPLATE, encoding="utf-8")

    today = datetime.now(UTC).date()
    shop = generate(seed, contacts, start=today - timedelta(days=730), end=today)
    began = time.perf_counter()
    data = root / "data"
    contacts_file, events_file = shop.write_jsonl(data)
    config = load_config(config_path)
    with open_store(config.store_path) as store:
        import_contacts(store, config, contacts_file)
        import_events(store, config, events_file)
    return config_path, time.perf_counter() - began


def feed(
    config_path: Path, batch: int, number: int, rng: random.Random, ids: list[str]
) -> list[str]:
    """Import ``batch`` new orders, occurred a second ago, for random existing contacts."""
    config = load_config(config_path)
    now = datetime.now(UTC) - timedelta(seconds=1)
    rows = []
    for i in range(batch):
        rows.append(
            {
                "id": f"live-{number}-{i}",
                "contact_id": rng.choice(ids),
                "type": "order",
                "occurred_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "amount": f"{rng.randint(900, 25000) / 100:.2f}",
                "currency": "EUR",
            }
        )
    path = config_path.parent / "data" / f"live-{number}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    with open_store(config.store_path) as store:
        import_events(store, config, path)
    return [r["id"] for r in rows]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", default="10m", help="how long the daemon runs (10m)")
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--feed-every", type=float, default=3.0, help="seconds between imports")
    parser.add_argument("--feed-batch", type=int, default=25, help="orders per import")
    parser.add_argument("--keep", type=Path, default=None, help="work here and keep it")
    args = parser.parse_args()
    duration = parse_duration(args.duration).total_seconds()

    root = args.keep or Path(tempfile.mkdtemp(prefix="regard-soak-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"workspace {root}")
    config_path, setup_seconds = prepare(root, args.contacts, args.seed)
    config = load_config(config_path)
    with open_store(config.store_path) as store:
        ids = [r[0] for r in store.conn.execute("SELECT id FROM contacts")]
        events_before = store.conn.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"store: {len(ids)} contacts, {events_before} events, generated and imported in "
          f"{setup_seconds:.0f}s")  # fmt: skip

    env = dict(os.environ, PYTHONPATH=str(SRC))
    log_path = root / "daemon.log"
    with log_path.open("wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "regard", "--config", str(config_path), "daemon", *LOG],
            stderr=log,
            stdout=subprocess.DEVNULL,
            env=env,
            cwd=root,
        )
        rng = random.Random(args.seed)
        live: list[str] = []
        samples: list[tuple[float, int]] = []
        began = time.monotonic()
        next_feed = began + 2.0
        next_sample = began + 1.0
        imports = 0
        while time.monotonic() - began < duration and daemon.poll() is None:
            now = time.monotonic()
            if now >= next_sample:
                samples.append((now - began, rss_kb(daemon.pid)))
                next_sample += 5.0
            if now >= next_feed:
                live += feed(config_path, args.feed_batch, imports, rng, ids)
                imports += 1
                next_feed += args.feed_every
            time.sleep(0.1)
        crashed = daemon.poll() is not None
        # the last orders get a few ticks to go out before the stop
        time.sleep(3.0)
        samples.append((time.monotonic() - began, rss_kb(daemon.pid)))
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=120)
    return report(root, config_path, log_path, live, samples, code, crashed, duration)


def report(
    root: Path,
    config_path: Path,
    log_path: Path,
    live: list[str],
    samples: list[tuple[float, int]],
    code: int,
    crashed: bool,
    duration: float,
) -> int:
    lines = [json.loads(line) for line in log_path.read_text(encoding="utf-8").splitlines()]
    ticks = [e for e in lines if e.get("event") == "tick"]
    failed_ticks = [e for e in lines if e.get("event") == "tick_failed"]
    durations = sorted(e["duration"] for e in ticks)
    config = load_config(config_path)
    with open_store(config.store_path) as store:
        conn = store.conn
        states = Counter(
            dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))
        )
        sent = {r[0] for r in conn.execute("SELECT id FROM deliveries WHERE state = 'sent'")}
        live_sent = conn.execute(
            "SELECT count(*) FROM deliveries WHERE campaign = 'soak-order' AND state = 'sent' "
            "AND occasion LIKE 'live-%'"
        ).fetchone()[0]
        live_decided = conn.execute(
            "SELECT count(*) FROM deliveries WHERE campaign = 'soak-order' "
            "AND occasion LIKE 'live-%'"
        ).fetchone()[0]
        daemon_ticks = conn.execute("SELECT count(*) FROM ticks WHERE kind = 'daemon'").fetchone()[
            0
        ]
    outbox = Counter(
        json.loads(line)["delivery_id"]
        for line in (root / "outbox" / "messages.jsonl").read_text(encoding="utf-8").splitlines()
        if line
    ) if (root / "outbox" / "messages.jsonl").exists() else Counter()  # fmt: skip
    duplicates = [i for i, n in outbox.items() if n > 1]
    lost = sent - set(outbox)
    phantom = set(outbox) - sent
    warm = [kb for t, kb in samples if t >= min(60.0, duration / 3)] or [samples[-1][1]]
    start_kb, end_kb = warm[0], samples[-1][1]

    def pct(p: float) -> float:
        return durations[min(len(durations) - 1, int(p * len(durations)))] if durations else 0.0

    print(f"daemon ran {duration:.0f}s, exit status {code}{' (it died early!)' if crashed else ''}")
    print(f"ticks: {len(ticks)} logged, {daemon_ticks} recorded, {len(failed_ticks)} failed; "
          f"duration p50 {pct(0.5):.3f}s p95 {pct(0.95):.3f}s max {pct(1.0):.3f}s "
          f"mean {statistics.fmean(durations) if durations else 0:.3f}s")  # fmt: skip
    print(f"deliveries by state: {dict(sorted(states.items()))}")
    print(f"sent during the soak (sum of ticks): {sum(e['sent'] for e in ticks)}; "
          f"outbox lines {sum(outbox.values())}")  # fmt: skip
    print(f"live orders imported: {len(live)}; decided {live_decided}; sent {live_sent}")
    print(f"duplicates in outbox: {len(duplicates)}; sent but not in outbox: {len(lost)}; "
          f"in outbox but not sent: {len(phantom)}; left in sending: {states['sending']}")  # fmt: skip
    print(f"RSS after warm-up {start_kb / 1024:.1f} MiB, at the end {end_kb / 1024:.1f} MiB "
          f"({(end_kb - start_kb) / 1024:+.1f} MiB); min {min(kb for _, kb in samples) / 1024:.1f}"
          f", max {max(kb for _, kb in samples) / 1024:.1f} MiB over {len(samples)} samples")  # fmt: skip
    checks = {
        "exit 0": code == 0 and not crashed,
        "no failed tick": not failed_ticks,
        "every live order sent": live_sent == len(live) == live_decided,
        "no duplicate": not duplicates,
        "no loss": not lost and not phantom,
        "nothing in sending": states["sending"] == 0,
        "no memory growth (< 10%)": end_kb <= start_kb * 1.10,
    }
    for name, ok in checks.items():
        print(f"  {'ok  ' if ok else 'FAIL'} {name}")
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
