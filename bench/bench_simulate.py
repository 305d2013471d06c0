"""A year of `regard simulate` on the 200k shop, beside the same ticks run one by one.

    python bench/bench_simulate.py                               # a year of daily ticks
    python bench/bench_simulate.py --days 30                     # a quick look
    python bench/bench_simulate.py --baseline-src /older/src     # the code before, too
    python bench/bench_simulate.py --no-runs                     # simulate only
    python bench/bench_simulate.py --runs-days 30                # the year; runs for 30 days

The shop is the big day's (``bench_tick.py --big-day``: ``generate.py --contacts 200000
--seed 1`` imported into a starter workspace), with the starter campaigns as ``regard init``
writes them. ``regard simulate --from 2025-01-01T10:00 --to …`` replays daily ticks at 10:00
(inside the campaigns' windows); beside it the very same ticks run one by one as
``regard run --at <day>T10:00`` on a scratch copy of the store (the file provider writing
the outbox). Both are timed as processes, and their results are compared per campaign:
sent, held out, still pending and skipped by reason. Between two ticks simulate dispatches
when a waiting delivery's window opens (as a daemon would), the runs only at their ticks,
so a delivery waiting for Tuesday 9:00 goes at 9:00 in one and at 10:00 in the other; the
decisions are the same unless a cap or cooldown sits exactly on that hour: so beside
"same" each campaign also says whether it was decided alike (sent and still pending
together, held out, skipped by reason). A year of ``regard run --at`` takes hours on a
loaded machine: ``--runs-days N`` compares the first N days tick for tick (a simulate of
those N days beside the runs) and times the whole period with simulate alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tick import big_day_workspace
from regard.store.backtest import copy_store

FIRST = date(2025, 1, 1)
HOUR = "T09:00:00Z"  # 10:00 in Berlin in winter; UTC, so DST moves neither


def workspace(cache: Path) -> Path:
    """The shop with the starter campaigns (the big day's win-back back to its 7 days)."""
    source = big_day_workspace(cache, 200_000)
    target = cache / "simulate-200000"
    if not (target / "regard.db").exists():
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        for name in ("regard.toml", "campaigns", "templates"):
            copy = shutil.copytree if (source / name).is_dir() else shutil.copy
            copy(source / name, target / name)
        win_back = target / "campaigns" / "win-back.toml"
        win_back.write_text(
            win_back.read_text(encoding="utf-8").replace(
                'max_lateness = "365d"', 'max_lateness = "7d"'
            ),
            encoding="utf-8",
        )
        shutil.copy(source / "regard.db", target / "regard.db")
    return target


def without_windows(text: str) -> str:
    """A campaign file without its ``[window]`` table."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        header = line.lstrip().startswith("[")
        if header:
            skipping = line.strip().split("#")[0].strip() == "[window]"
        if not skipping:
            out.append(line)
    return "".join(out)


def anytime(ws: Path) -> Path:
    """The same shop, its campaigns without their windows: then a delivery never waits
    past its tick, so simulate and the runs dispatch at the very same instants and must
    leave the very same deliveries (with windows, simulate sends a waiting delivery when
    its window opens, as a daemon would, and ``regard run --at`` at its next tick)."""
    target = ws.parent / f"{ws.name}-anytime"
    if not (target / "regard.db").exists():
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(ws, target, ignore=shutil.ignore_patterns("regard.db*", "outbox"))
        for path in (target / "campaigns").glob("*.toml"):
            path.write_text(without_windows(path.read_text(encoding="utf-8")), encoding="utf-8")
        copy_store(ws / "regard.db", target / "regard.db")
    return target


def regard(args: list[str], cwd: Path, src: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    return subprocess.run(
        [sys.executable, "-m", "regard", *args],
        cwd=cwd, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip


def rounded(value: Any, *, sampled: bool = True) -> Any:
    """``value`` with its costs rounded as simulate rounds them now (a baseline from before
    printed the float sums), at any depth; without ``sampled``, its ``sample`` entries
    left out."""
    if isinstance(value, dict):
        return {
            k: rounded(v, sampled=sampled) for k, v in value.items() if sampled or k != "sample"
        }
    if isinstance(value, list):
        return [rounded(v, sampled=sampled) for v in value]
    if isinstance(value, float):
        return round(value, 6)
    return value


def unsampled(value: Any) -> Any:
    """``value`` without its ``sample`` entries, at any depth, its costs rounded."""
    return rounded(value, sampled=False)


def children_cpu() -> float:
    """CPU seconds of the finished child processes so far (a shared machine's wall clock
    says little; this says what the work cost)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def simulated(
    ws: Path, days: int, src: Path | None, jobs: int | None = None
) -> tuple[float, dict[str, Any]]:
    last = FIRST + timedelta(days=days - 1)
    began, cpu = time.perf_counter(), children_cpu()
    extra = ["--jobs", str(jobs)] if jobs is not None else []
    out = regard(
        ["simulate", "--from", f"{FIRST}{HOUR}", "--to", f"{last}{HOUR}", "--json", *extra],
        ws, src,
    )  # fmt: skip
    result = json.loads(out.stdout)
    result["cpu_seconds"] = children_cpu() - cpu
    return time.perf_counter() - began, result


def one_by_one(ws: Path, days: int) -> tuple[float, float, dict[str, dict[str, Any]]]:
    """The same ticks as ``regard run --at`` on a scratch copy: wall and CPU seconds, and
    the same counts."""
    scratch = Path(tempfile.mkdtemp(prefix="regard-bench-runs-"))
    try:
        for name in ("regard.toml", "campaigns", "templates"):
            copy = shutil.copytree if (ws / name).is_dir() else shutil.copy
            copy(ws / name, scratch / name)
        shutil.copy(ws / "regard.db", scratch / "regard.db")
        began, cpu = time.perf_counter(), children_cpu()
        for n in range(days):
            regard(["run", "--at", f"{FIRST + timedelta(days=n)}{HOUR}"], scratch)
        elapsed = time.perf_counter() - began
        used = children_cpu() - cpu
        print(f"  (the runs took {used:.1f} s CPU)", flush=True)
        return elapsed, used, counts(scratch / "regard.db")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def counts(path: Path) -> dict[str, dict[str, Any]]:
    """Per campaign, as simulate's JSON counts them: sent, held out, pending, skipped."""
    conn = sqlite3.connect(str(path))
    out: dict[str, dict[str, Any]] = {}
    for campaign, state, reason, n in conn.execute(
        "SELECT campaign, state, coalesce(reason, 'unknown'), count(*) FROM deliveries"
        " GROUP BY campaign, state, reason"
    ):
        entry = out.setdefault(campaign, {"sent": 0, "held_out": 0, "pending": 0, "skipped": {}})
        if state == "skipped":
            entry["skipped"][reason] = entry["skipped"].get(reason, 0) + n
        else:
            key = {"sent": "sent", "held_out": "held_out"}.get(state, "pending")
            entry[key] += n
    conn.close()
    return out


def of_simulation(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    keep = ("sent", "held_out", "pending", "skipped")
    return {
        cid: {k: c[k] for k in keep}
        for cid, c in result["campaigns"].items()
        if c["sent"] or c["held_out"] or c["pending"] or c["skipped"]
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "regard-bench")
    parser.add_argument("--baseline-src", type=Path, help="simulate with this src too")
    parser.add_argument("--no-runs", action="store_true", help="skip the one-by-one runs")
    parser.add_argument("--jobs", type=int, help="simulate --jobs N (default: its own)")
    parser.add_argument("--runs-days", type=int, help="compare this many days (default: all)")
    parser.add_argument(
        "--windows", action="store_true",
        help="keep the campaigns' windows (the runs then send later: decided alike, not same)",
    )  # fmt: skip
    args = parser.parse_args()
    ws = workspace(args.cache)
    if not args.windows:
        ws = anytime(ws)
    print(f"workspace: {ws}", flush=True)
    if args.baseline_src is not None:
        old, old_result = simulated(ws, args.days, args.baseline_src)
        print(f"simulate (baseline), {args.days} daily ticks: {old:.1f} s "
              f"({old_result['cpu_seconds']:.1f} s CPU)", flush=True)  # fmt: skip
    new, result = simulated(ws, args.days, None, args.jobs)
    print(
        f"simulate (this tree), {args.days} daily ticks: {new:.1f} s "
        f"({result['cpu_seconds']:.1f} s CPU; {result.get('ticks_per_second')} ticks/s "
        f"reported, in {result.get('parts', 1)} parts; goal for 365: ≤ 60 s)",
        flush=True,
    )
    if args.baseline_src is not None:
        print(f"simulate: this tree / baseline: time {new / old:.2f}, "
              f"CPU {result['cpu_seconds'] / old_result['cpu_seconds']:.2f}", flush=True)  # fmt: skip
        # all of it: per campaign and week the counts, the costs and the sample of recipients
        # (a sample takes the first deliveries sent, ties by id: trees whose delivery ids
        # differ pick other recipients of the same instant, so it is compared apart)
        same = unsampled(old_result["campaigns"]) == unsampled(result["campaigns"])
        print(f"simulate: baseline and this tree give the same counts and costs: {same}; "
              "the same samples: "
              f"{rounded(old_result['campaigns']) == rounded(result['campaigns'])}",
              flush=True)  # fmt: skip
    if args.no_runs:
        return
    days = args.runs_days or args.days
    if days != args.days:
        short, result = simulated(ws, days, None)
        print(f"simulate (this tree), the first {days} daily ticks: {short:.1f} s "
              f"({result['cpu_seconds']:.1f} s CPU)", flush=True)  # fmt: skip
    runs, runs_cpu, ran = one_by_one(ws, days)
    print(f"regard run --at, the same {days} ticks one by one: {runs:.1f} s", flush=True)
    mine = of_simulation(result)
    for cid in sorted(set(mine) | set(ran)):
        a, b = mine.get(cid), ran.get(cid)
        alike = "same" if a == b else ("decided alike" if decided(a) == decided(b) else "differs")
        print(f"  {cid}: simulate {a} | runs {b}  ({alike})")
    print(f"simulate and the runs: {'identical' if mine == ran else 'NOT identical'}")
    print(f"simulate / runs: {result['cpu_seconds'] / runs_cpu:.3f} CPU")


def decided(counts: dict[str, Any] | None) -> tuple[int, int, dict[str, int]] | None:
    """What the ticks decided, whenever dispatch sent it: sent and pending together."""
    if counts is None:
        return None
    return counts["sent"] + counts["pending"], counts["held_out"], counts["skipped"]


if __name__ == "__main__":
    main()
