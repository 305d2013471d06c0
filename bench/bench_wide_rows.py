"""Merging a wide row's attributes: SQLite's ``json_patch`` beside regard's ``merge_patch``,
measured in the same run on the same texts.

    python bench/bench_wide_rows.py                  # 100, 1,000, 10,000 and 30,000 keys
    python bench/bench_wide_rows.py --keys 1000 100000

For each width N, a stored object of N attributes is patched with N changed values (the
update of a re-imported wide row), both in one SQLite statement: ``json_patch`` scans the
target for every key of the patch (quadratic), ``merge_patch`` (regard.store.rows) makes
one pass over each. Also the cost on an ordinary row (ten attributes). Not run in CI.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from regard.store.rows import merge_patch


def timed(conn: sqlite3.Connection, function: str, target: str, patch: str) -> tuple[float, str]:
    """Seconds per statement (repeated for at least 0.2 s) and the merged text."""
    sql = f"SELECT {function}(?, ?)"
    count, started = 0, time.perf_counter()
    while True:
        merged = conn.execute(sql, (target, patch)).fetchone()[0]
        count += 1
        spent = time.perf_counter() - started
        if spent > 0.2:
            return spent / count, merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, nargs="+", default=[10, 100, 1_000, 10_000, 30_000])
    args = parser.parse_args()
    conn = sqlite3.connect(":memory:")
    conn.create_function("merge_patch", 2, merge_patch, deterministic=True)
    print(f"{'keys':>7}  {'json_patch':>12}  {'merge_patch':>12}  {'ratio':>7}")
    for n in args.keys:
        compact = (",", ":")
        target = json.dumps({f"a{i}": f"v{i}" for i in range(n)}, separators=compact)
        patch = json.dumps({f"a{i}": f"w{i}" for i in range(n)}, separators=compact)
        old, old_text = timed(conn, "json_patch", target, patch)
        new, new_text = timed(conn, "merge_patch", target, patch)
        assert json.loads(old_text) == json.loads(new_text)
        print(f"{n:>7}  {old * 1e3:>10.3f}ms  {new * 1e3:>10.3f}ms  {old / new:>7.2f}")


if __name__ == "__main__":
    main()
