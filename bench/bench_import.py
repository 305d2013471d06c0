"""Import throughput and peak memory, against a baseline measured in the same run.

    python bench/bench_import.py                       # 20k and 200k contacts (quick)
    python bench/bench_import.py --contacts 100000 1000000
    python bench/bench_import.py --contacts 20000 --old ../main   # old code beside new
    python bench/bench_import.py --contacts 0 --shopify-rows 1000000
    python bench/bench_import.py --contacts 1000000 --data DIR --contacts-store DB --old OLD

``--old TREE`` also imports every file through another checkout's ``src`` (the code before
a change), so old and new are measured in the same run against the same baseline.
``--contacts-store DB`` starts each tree's events import from a copy of a store that holds
the shop's contacts already (the ``contacts.db`` a ``--keep`` run with ``--share-contacts``
leaves), so a 5M-event run spends its time on the events: one import per tree, new then
old, each beside its own baseline.
``--shopify-rows N`` writes Shopify's own customer and orders CSV exports (the orders one
row per line item, 79 columns) of a synthetic shop with about N line-item rows and imports
them with ``--format shopify``; its rate counts line-item rows.

For each size, a synthetic shop (about five events per contact) is written as CSV, then
imported through the real CLI (``python -m regard import contacts|events``), each import in
its own process so that its peak memory (maxrss) is its own. The baseline is a plain
``executemany`` INSERT of the very same rows, already parsed (read back from the imported
store, not timed), into a fresh store with the same schema, in one transaction.

Prints rows/s for both, their ratio, and the peak memory of each import. Rates are per
CPU second (the child's user + system time; the baseline's process time), so that a
machine shared with other work gives the same ratio as an idle one; the import's includes
starting Python. Not run in CI.
"""

from __future__ import annotations

import argparse
import csv
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

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


def run_import(
    workdir: Path, kind: str, path: Path, src: Path = ROOT / "src", extra: tuple[str, ...] = ()
) -> tuple[float, int]:
    """Import through the CLI in a child process; (CPU seconds, peak RSS in MiB).

    The peak is the child's own VmHWM, polled from /proc: getrusage's maxrss would also
    count the pages of this (larger) process that the child had before its exec.
    """
    env = dict(os.environ, PYTHONPATH=str(src))
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    args = [sys.executable, "-m", "regard", "--config", str(workdir / "regard.toml")]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*args, "import", kind, str(path), *extra],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    peak_kib = 0
    while child.poll() is None:
        peak_kib = max(peak_kib, _high_water_kib(child.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    assert child.stderr is not None
    if child.returncode != 0:
        raise SystemExit(f"import {kind} failed:\n{child.stderr.read().decode()}")
    child.stderr.close()
    del elapsed  # on a shared machine wall time measures the neighbours; CPU time does not
    return cpu, peak_kib // 1024


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
            started = time.process_time()
            conn.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
            spent += time.process_time() - started
            count += len(rows)
    store.close()
    read.close()
    return spent, count


def measure(
    contacts: int,
    folder: Path,
    old: Path | None,
    data: Path | None = None,
    share_contacts: bool = False,
    contacts_store: Path | None = None,
) -> dict[str, float]:
    """Import a synthetic shop of ``contacts`` (written by ``bench/generate.py --seed 1``
    into ``data`` beforehand, or now into the work folder) through each tree (with
    ``share_contacts``, the other trees import the events into a copy of the first tree's
    store with the contacts)."""
    began = time.perf_counter()
    if data is not None and (data / "events.csv").exists():
        contacts_csv, events_csv = data / "contacts.csv", data / "events.csv"
    else:
        contacts_csv, events_csv = generate(1, contacts).write_csv(
            data or folder / f"data-{contacts}"
        )
    generated = time.perf_counter() - began
    result: dict[str, float] = {"contacts": contacts, "generate_s": generated}
    trees = [("new", ROOT / "src")] + ([("old", old / "src")] if old else [])
    first_work: Path | None = None
    for tree, src in trees:
        work = folder / f"work-{contacts}-{tree}"
        work.mkdir()
        (work / "regard.toml").write_text(CONFIG, encoding="utf-8")
        kinds: tuple[tuple[str, Path], ...] = (("contacts", contacts_csv), ("events", events_csv))
        if contacts_store is not None:
            shutil.copy(contacts_store, work / "regard.db")
            kinds = kinds[1:]
        elif share_contacts and first_work is not None:
            shutil.copy(first_work / "contacts.db", work / "regard.db")
            kinds = kinds[1:]
        for kind, path in kinds:
            seconds, rss = run_import(work, kind, path, src)
            if kind == "contacts" and share_contacts and first_work is None:
                first_work = work
                shutil.copy(work / "regard.db", work / "contacts.db")
            base_seconds, rows = baseline(work / "regard.db", folder / f"base-{contacts}.db", kind)
            _drop(folder / f"base-{contacts}.db")
            result[f"{tree}_{kind}_rows"] = rows
            result[f"{tree}_{kind}_rate"] = rows / seconds
            result[f"{tree}_{kind}_base_rate"] = rows / base_seconds
            result[f"{tree}_{kind}_rss_mib"] = rss
            result[f"{tree}_{kind}_cpu_s"] = seconds
            result[f"{tree}_{kind}_base_cpu_s"] = base_seconds
            print(
                f"{tree} {kind}: {rows:,} rows, {seconds:.1f} CPU s (baseline {base_seconds:.1f} "
                f"s: ratio {base_seconds / seconds:.2f}), peak RSS {rss} MiB",
                file=sys.stderr,
                flush=True,
            )
    return result


def _drop(db: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)


SHOPIFY_CUSTOMERS = [
    "Customer ID", "First Name", "Last Name", "Email", "Accepts Email Marketing",
    "Default Address Company", "Default Address Address1", "Default Address Address2",
    "Default Address City", "Default Address Province Code", "Default Address Country Code",
    "Default Address Zip", "Default Address Phone", "Phone", "Accepts SMS Marketing",
    "Total Spent", "Total Orders", "Note", "Tax Exempt", "Tags",
]  # fmt: skip
SHOPIFY_ORDERS = [
    "Name", "Email", "Financial Status", "Paid at", "Fulfillment Status", "Fulfilled at",
    "Accepts Marketing", "Currency", "Subtotal", "Shipping", "Taxes", "Total",
    "Discount Code", "Discount Amount", "Shipping Method", "Created at",
    "Lineitem quantity", "Lineitem name", "Lineitem price", "Lineitem compare at price",
    "Lineitem sku", "Lineitem requires shipping", "Lineitem taxable",
    "Lineitem fulfillment status", "Billing Name", "Billing Street", "Billing Address1",
    "Billing Address2", "Billing Company", "Billing City", "Billing Zip", "Billing Province",
    "Billing Country", "Billing Phone", "Shipping Name", "Shipping Street",
    "Shipping Address1", "Shipping Address2", "Shipping Company", "Shipping City",
    "Shipping Zip", "Shipping Province", "Shipping Country", "Shipping Phone", "Notes",
    "Note Attributes", "Cancelled at", "Payment Method", "Payment Reference",
    "Refunded Amount", "Vendor", "Outstanding Balance", "Employee", "Location",
    "Device ID", "Id", "Tags", "Risk Level", "Source", "Lineitem discount", "Tax 1 Name",
    "Tax 1 Value", "Tax 2 Name", "Tax 2 Value", "Tax 3 Name", "Tax 3 Value", "Tax 4 Name",
    "Tax 4 Value", "Tax 5 Name", "Tax 5 Value", "Phone", "Receipt Number", "Duties",
    "Billing Province Name", "Shipping Province Name", "Payment ID", "Payment Terms Name",
    "Next Payment Due At", "Payment References",
]  # fmt: skip


def _shopify_time(iso: str) -> str:
    """``2025-11-02T02:20:15Z`` as Shopify's export writes it: ``2025-11-02 03:20:15 +0100``."""
    from datetime import datetime, timedelta, timezone

    moment = datetime.fromisoformat(iso).astimezone(timezone(timedelta(hours=1)))
    return moment.strftime("%Y-%m-%d %H:%M:%S %z")


def write_shopify(folder: Path, line_items: int) -> tuple[Path, Path, int]:
    """Shopify's customer and orders exports of a synthetic shop, streamed, until about
    ``line_items`` line-item rows are written; (customers, orders, line-item rows)."""
    folder.mkdir(parents=True, exist_ok=True)
    customers_path, orders_path = folder / "customers_export.csv", folder / "orders_export.csv"
    written = 0
    with (
        customers_path.open("w", encoding="utf-8", newline="") as cf,
        orders_path.open("w", encoding="utf-8", newline="") as of,
    ):
        customers = csv.writer(cf, lineterminator="\n")
        orders = csv.DictWriter(of, SHOPIFY_ORDERS, lineterminator="\n", restval="")
        customers.writerow(SHOPIFY_CUSTOMERS)
        orders.writeheader()
        for customer in generate(2, max(1, line_items // 6)).customers():
            if written >= line_items:
                break
            c = customer.contact
            customers.writerow([
                f"'{c['id']}", c.get("first_name") or "", c.get("last_name") or "",
                c.get("email") or "", "yes" if c.get("consent_email") else "no",
                c.get("company") or "", c.get("street") or "", "", c.get("city") or "", "",
                c.get("country") or "", f"'{c.get('postal_code') or ''}", "",
                f"'{c['phone']}" if c.get("phone") else "", "no", "", "", "", "no",
                ", ".join(c.get("tags") or []),
            ])  # fmt: skip
            for event in customer.events:
                if event["type"] != "order":
                    continue
                when = _shopify_time(event["occurred_at"])
                items = event["properties"]["items"]
                for n, item in enumerate(items):
                    row = {"Name": f"#{event['id']}", "Email": c.get("email") or ""}
                    if n == 0:
                        row.update({
                            "Financial Status": "paid", "Paid at": when,
                            "Fulfillment Status": "fulfilled", "Currency": event["currency"],
                            "Subtotal": str(event["amount"]), "Total": str(event["amount"]),
                            "Created at": when, "Refunded Amount": "0.00",
                            "Id": f"'{event['id']}", "Source": "web",
                            "Billing Name": f"{c.get('first_name') or ''} {c.get('last_name') or ''}",
                        })  # fmt: skip
                    row.update({
                        "Lineitem quantity": str(item["quantity"]), "Lineitem name": item["name"],
                        "Lineitem price": str(item["price"]), "Lineitem sku": item["sku"],
                        "Lineitem requires shipping": "true", "Lineitem taxable": "true",
                    })  # fmt: skip
                    orders.writerow(row)
                    written += 1
    return customers_path, orders_path, written


def measure_shopify(
    line_items: int, folder: Path, old: Path | None = None
) -> list[dict[str, float]]:
    """The Shopify exports through ``--format shopify``: line-item rows/s and peak memory,
    for this tree and ``old``'s."""
    data = folder / f"shopify-{line_items}"
    customers, orders, rows = write_shopify(data, line_items)
    fmt = ("--format", "shopify")
    results = []
    trees = [("new", ROOT / "src")] + ([("old", old / "src")] if old else [])
    for tree, src in trees:
        work = folder / f"work-shopify-{line_items}-{tree}"
        work.mkdir()
        (work / "regard.toml").write_text(CONFIG, encoding="utf-8")
        result: dict[str, Any] = {"line_items": rows, "tree": tree}
        for kind, path in (("contacts", customers), ("events", orders)):
            seconds, rss = run_import(work, kind, path, src, extra=fmt)
            base_seconds, stored = baseline(work / "regard.db", folder / "base-shopify.db", kind)
            _drop(folder / "base-shopify.db")
            result[f"{kind}_stored"] = stored
            result[f"{kind}_seconds"] = seconds
            result[f"{kind}_base_seconds"] = base_seconds
            result[f"{kind}_rss_mib"] = rss
        result["orders_file_rows"] = rows
        results.append(result)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--contacts", type=int, nargs="+", default=[20_000, 200_000])
    parser.add_argument("--old", type=Path, help="also import through this checkout's src")
    parser.add_argument("--shopify-rows", type=int, default=0, help="Shopify export line items")
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--share-contacts",
        action="store_true",
        help="import the contacts through the first tree only (measure the events)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="read (or write) the shop's contacts.csv and events.csv here: generate a big "
        "one once (bench/generate.py --seed 1) and measure it again and again",
    )
    parser.add_argument(
        "--contacts-store",
        type=Path,
        help="a store holding the contacts of --data already: import only the events",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="regard-bench-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        results = [
            measure(n, folder, args.old, args.data, args.share_contacts, args.contacts_store)
            for n in args.contacts
            if n > 0
        ]
        shopify = measure_shopify(args.shopify_rows, folder, args.old) if args.shopify_rows else []
    print(
        f"{'contacts':>9} {'code':>4} {'table':>8} {'rows':>9} {'regard rows/s':>14} "
        f"{'baseline rows/s':>16} {'ratio':>6} {'peak RSS':>9}"
    )
    for r in results:
        for tree in ("new", "old"):
            for kind in ("contacts", "events"):
                if f"{tree}_{kind}_rate" not in r:
                    continue
                rate, base = r[f"{tree}_{kind}_rate"], r[f"{tree}_{kind}_base_rate"]
                print(
                    f"{int(r['contacts']):>9} {tree:>4} {kind:>8} "
                    f"{int(r[f'{tree}_{kind}_rows']):>9} {rate:>14,.0f} {base:>16,.0f} "
                    f"{rate / base:>6.2f} {int(r[f'{tree}_{kind}_rss_mib']):>6} MiB"
                )
    for s in shopify:
        print(
            f"shopify export ({s['tree']}): {int(s['orders_file_rows']):,} line-item rows → "
            f"{int(s['events_stored']):,} orders in {s['events_seconds']:.1f}s "
            f"({s['orders_file_rows'] / s['events_seconds']:,.0f} line-item rows/s; baseline "
            f"{s['events_stored'] / s['events_base_seconds']:,.0f} orders/s, ratio in orders "
            f"{s['events_base_seconds'] / s['events_seconds']:.2f}), peak RSS "
            f"{int(s['events_rss_mib'])} MiB; customers {int(s['contacts_stored']):,} in "
            f"{s['contacts_seconds']:.1f}s, peak RSS {int(s['contacts_rss_mib'])} MiB"
        )
    for r in results:
        if args.data is not None:
            continue  # the shop was read from --data, not generated now
        rows = r["contacts"] + r["new_events_rows"]
        print(
            f"generated {int(rows):,} rows in {r['generate_s']:.1f}s ({rows / r['generate_s']:,.0f} rows/s)"
        )


if __name__ == "__main__":
    main()
