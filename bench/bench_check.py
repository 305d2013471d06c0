"""``regard check`` over a synthetic shop: what asking the store (each campaign's reach
today, the order history) adds to the check of the files.

    python bench/bench_check.py [--contacts 20000]

A starter workspace (the example campaigns) and a synthetic shop with two years of
orders, imported. Then ``check_workspace`` three times with the store questions and three
times without them (the baseline, the same run), best of each; and the questions alone.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from click.testing import CliRunner

from regard.cli import cli
from regard.render import check
from regard.synthetic import generate
from regard.workspace import load_config


def best(fn: object, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "shop"
        runner = CliRunner()
        assert runner.invoke(cli, ["init", str(root)]).exit_code == 0
        contacts, events = generate(1, args.contacts).write_csv(Path(tmp) / "data")
        config_path = str(root / "regard.toml")
        for kind, path in (("contacts", contacts), ("events", events)):
            result = runner.invoke(cli, ["--config", config_path, "import", kind, str(path)])
            assert result.exit_code == 0, result.output
        config = load_config(root / "regard.toml")
        with_store = best(lambda: check.check_workspace(config))
        result = check.check_workspace(config)
        real = check._check_store
        check._check_store = lambda *a, **k: None  # type: ignore[assignment]
        try:
            without = best(lambda: check.check_workspace(config))
        finally:
            check._check_store = real  # type: ignore[assignment]
        print(f"{args.contacts:,} contacts, {len(result.reach)} campaigns")
        print(f"check without the store questions: {without:.2f}s (1.00)")
        print(f"check with them:                   {with_store:.2f}s ({with_store / without:.2f})")
        for campaign_id, counts in result.reach.items():
            print(f"  {campaign_id}: {counts}")
        print(f"  history: {result.history}")


if __name__ == "__main__":
    main()
