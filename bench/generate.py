"""Write a synthetic shop as import files.

    python bench/generate.py --contacts 100000 --seed 1 --out /tmp/shop
    python bench/generate.py --contacts 1000000 --format jsonl --out /tmp/shop-1m

Writes contacts.<ext> and events.<ext> (about five events per contact) and prints how long
it took.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from regard.synthetic import generate


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    parser.add_argument("--delimiter", default=",", help="CSV delimiter: , or ;")
    parser.add_argument("--start", type=date.fromisoformat, default=date(2024, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2026, 1, 1))
    args = parser.parse_args()

    shop = generate(args.seed, args.contacts, start=args.start, end=args.end)
    began = time.perf_counter()
    if args.format == "csv":
        contacts, events = shop.write_csv(args.out, delimiter=args.delimiter)
    else:
        contacts, events = shop.write_jsonl(args.out)
    elapsed = time.perf_counter() - began
    with events.open("rb") as f:
        event_count = sum(1 for _ in f) - (1 if args.format == "csv" else 0)
    print(
        f"{args.contacts} contacts, {event_count} events in {elapsed:.1f}s "
        f"({(args.contacts + event_count) / elapsed:,.0f} rows/s) → {contacts}, {events}"
    )


if __name__ == "__main__":
    main()
