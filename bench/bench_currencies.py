"""What converting amounts costs the sums that read them, against the same sums without.

    python bench/bench_currencies.py                 # 200k contacts, 1M orders
    python bench/bench_currencies.py --contacts 20000

A store of N contacts with five orders each (a tenth of them in CHF), then, in the same
run, each sum of amounts as regard writes it (:func:`regard.store.currencies.converted`)
beside the same statement over the plain ``amount``: the stored facts of every contact
(what a changed rate and a large import recompute), every contact's total_spent as of T
(an audience on it), and the milestone window over all orders. Each with no rates and with
two. Prints seconds (best of three) and the ratio. Not run in CI.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from regard.store import open_store
from regard.store.currencies import converted

DAY = 86400


def best(fn: Callable[[], object]) -> float:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def statements(amount: str) -> dict[str, str]:
    return {
        "stored facts (all contacts)": f"""
            SELECT c.id, coalesce(sum(CASE WHEN e.type = 'order' THEN {amount} END), 0)
            FROM contacts c LEFT JOIN events e ON e.contact_id = c.id AND e.voided_at IS NULL
            GROUP BY c.id""",
        "total_spent as of T (all contacts)": f"""
            SELECT c.id, (SELECT round(coalesce(sum({amount.replace("e.", "x.")}), 0), 2)
                          FROM events x WHERE x.contact_id = c.id AND x.type = 'order'
                            AND x.occurred_at <= 1900000000 AND x.voided_at IS NULL)
            FROM contacts c""",
        "milestone window (all orders)": f"""
            SELECT count(*) FROM (
                SELECT sum(coalesce({amount}, 0)) OVER (
                    PARTITION BY e.contact_id ORDER BY e.occurred_at, e.id
                    ROWS UNBOUNDED PRECEDING) AS running
                FROM events e WHERE e.type = 'order') WHERE running >= 500""",
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--contacts", type=int, default=200_000)
    args = parser.parse_args()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        store = open_store(Path(folder) / "bench.db")
        with store.write() as conn:
            conn.executemany(
                "INSERT INTO contacts (id, created_at, updated_at) VALUES (?, 0, 0)",
                ((f"c{i}",) for i in range(args.contacts)),
            )
            conn.executemany(
                "INSERT INTO events (id, contact_id, type, occurred_at, amount, currency, "
                "imported_at) VALUES (?, ?, 'order', ?, ?, ?, 0)",
                (
                    (
                        f"o{i}-{k}",
                        f"c{i}",
                        1_700_000_000 + rng.randrange(400) * DAY,
                        round(rng.uniform(5, 300), 2),
                        "CHF" if rng.random() < 0.1 else "EUR",
                    )
                    for i in range(args.contacts)
                    for k in range(5)
                ),
            )
        conn = store.conn
        print(f"{args.contacts} contacts, {5 * args.contacts} orders")
        for label, rates in (("no rates", {}), ("CHF and USD rates", {"CHF": 1.04, "USD": 0.9})):
            store.contacts.use_rates(rates)
            print(f"\n{label}")
            plain, conv = statements("e.amount"), statements(converted("e"))
            for name in plain:
                old = best(lambda s=plain[name]: conn.execute(s).fetchall())
                new = best(lambda s=conv[name]: conn.execute(s).fetchall())
                print(f"  {name:38} plain {old:6.2f}s  converted {new:6.2f}s  ×{new / old:.2f}")
        store.close()


if __name__ == "__main__":
    main()
