"""Import throughput and peak memory, against a baseline measured in the same run.

    python bench/bench_import.py                       # 20k and 200k contacts (quick)
    python bench/bench_import.py --contacts 100000 1000000

For each size, a synthetic shop (about five events per contact) is written as CSV, then
imported through the real CLI (``python -m regard import contacts|events``), each import in
its own process so that its peak memory (maxrss) is its own. The baseline is a plain
``executemany`` INSERT of the very same rows, already parsed (read back from the imported
store, not timed), into a fresh store with the same schema, in one transaction.

Prints rows/s for both, their ratio, and the peak memory of each import. Not run in CI.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from regard.store import open_store  # noqa: E402
from regard.synthetic import generate  # noqa: E402

CONFIG = """\
timezone = "Europe/Berlin"
[sender]
country = "DE"
"""
CHUNK = 100_000


def run_import(workdir: Path, kind: str, path: Path) -> tuple[float, int]:
    """Import through the CLI in a child process; (seconds, peak RSS in MiB).

    The peak is the child's own VmHWM, polled from /proc: getrusage's maxrss would also
    count the pages of this (larger) process that the child had before its exec.
    """
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    args = [sys.executable, "-m", "regard", "--config", str(workdir / "regard.toml")]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*args, "import", kind, str(path)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak_kib = 0
    while child.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(child.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    assert child.stderr is not None
    if child.returncode != 0:
        raise SystemExit(f"import {kind} failed:\n{child.stderr.read().decode()}")
    child.stderr.close()
    return elapsed, peak_kib // 1024


def _high_water_kib(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def baseline(source: Path, target: Path, table: str) -> tuple[float, int]:
    """Plain executemany of the same rows into a fresh store; (seconds spent inserting, rows)."""
    columns = {
        "contacts": "id, email, phone, first_name, last_name, salutation, company, locale, "
        "timezone, country, street, postal_code, city, birthday, signup_at, consent_email, "
        "consent_sms, consent_card, tags, attributes, created_at, updated_at",
        "events": "id, contact_id, type, occurred_at, amount, currency, properties, imported_at",
    }[table]
    marks = ", ".join("?" for _ in columns.split(","))
    read = sqlite3.connect(source)
    store = open_store(target)
    spent, count = 0.0, 0
    cursor = read.execute(f"SELECT {columns} FROM {table} ORDER BY rowid")
    with store.write() as conn:
        while rows := cursor.fetchmany(CHUNK):
            started = time.perf_counter()
            conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            spent += time.perf_counter() - started
            count += len(rows)
    store.close()
    read.close()
    return spent, count


def measure(contacts: int, folder: Path) -> dict[str, float]:
    data = folder / f"data-{contacts}"
    began = time.perf_counter()
    contacts_csv, events_csv = generate(1, contacts).write_csv(data)
    generated = time.perf_counter() - began
    work = folder / f"work-{contacts}"
    work.mkdir()
    (work / "regard.toml").write_text(CONFIG, encoding="utf-8")
    result: dict[str, float] = {"contacts": contacts, "generate_s": generated}
    for kind, path in (("contacts", contacts_csv), ("events", events_csv)):
        seconds, rss = run_import(work, kind, path)
        base_seconds, rows = baseline(work / "regard.db", folder / f"base-{contacts}.db", kind)
        result[f"{kind}_rows"] = rows
        result[f"{kind}_rate"] = rows / seconds
        result[f"{kind}_base_rate"] = rows / base_seconds
        result[f"{kind}_rss_mib"] = rss
    for suffix in ("", "-wal", "-shm"):
        Path(f"{folder / f'base-{contacts}.db'}{suffix}").unlink(missing_ok=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--contacts", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regard-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = [measure(n, folder) for n in args.contacts]
    print(
        f"{'contacts':>9} {'table':>8} {'rows':>9} {'regard rows/s':>14} "
        f"{'baseline rows/s':>16} {'ratio':>6} {'peak RSS':>9}"
    )
    for r in results:
        for kind in ("contacts", "events"):
            rate, base = r[f"{kind}_rate"], r[f"{kind}_base_rate"]
            print(
                f"{int(r['contacts']):>9} {kind:>8} {int(r[f'{kind}_rows']):>9} {rate:>14,.0f} "
                f"{base:>16,.0f} {rate / base:>6.2f} {int(r[f'{kind}_rss_mib']):>6} MiB"
            )
    for r in results:
        rows = r["contacts"] + r["events_rows"]
        print(
            f"generated {int(rows):,} rows in {r['generate_s']:.1f}s ({rows / r['generate_s']:,.0f} rows/s)"
        )


if __name__ == "__main__":
    main()
