"""A replay run in parts side by side: each process replays its share of the contacts.

A replay's work is per contact: whether an occasion is due, the audience, consent and
suppressions, the caps, cooldowns and once-per-contact, the holdout (a hash of campaign
and contact), the render, the send-time rules, windows in the contact's time zone,
follow-ups of the contact's own sends. So the store is split by contact
(:func:`regard.store.scratch.scratch_parts`) and each part replayed on its own copy in a
process of its own, forked from this one (it inherits the loaded campaigns, nothing is
imported again); their counts and samples are merged
(:func:`regard.report.simulate.merged`) into what one replay of the whole store gives.

Two things are not per contact, and a split would change them:

- a campaign's ``daily_limit`` lets a number of deliveries out per day, whoever they are
  for: with any campaign having one, the store is replayed whole (:func:`splittable`);
- a replay dispatches at most :data:`regard.report.simulate.MAX_OPENINGS_PER_TICK`
  distinct instants between two ticks: where the parts together met that many, the
  replay is run again whole (the caller checks).

A part that fails makes the whole replay fail with its error, the others are stopped; a
part also stops at its next tick once this process is gone. With one core, or for a small
store or a short period (:data:`MIN_CONTACT_DAYS`: the parts' copies cost more than they
save), the replay is not split (:func:`default_parts`).
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, Pipe, wait
from pathlib import Path
from typing import TypeVar

from regard.campaigns.model import Campaign
from regard.render.worker import fork
from regard.store import open_store
from regard.store.parts import build_indexes
from regard.store.readonly import contact_count
from regard.store.scratch import scratch_parts

T = TypeVar("T")

# contacts × days of the period below which a replay is not split: splitting costs a few
# seconds (the parts' copies and indexes); measured on 200,000 contacts and 2 cores, 60
# daily ticks took 19.1 s in parts against 16.4 s whole, 90 ticks 26.0 against 25.9 s,
# a year 117–121 s against 138–150 s
MIN_CONTACT_DAYS = 25_000_000
MAX_PARTS = 8  # more processes than that: each part's copy costs more than it saves


def cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_parts(source: Path | str, days: float) -> int:
    """How many parts a replay of the store at ``source`` over ``days`` runs in: one per
    core (at most :data:`MAX_PARTS`), or 1 with one core, without ``fork``, or where its
    contacts × ``days`` are fewer than :data:`MIN_CONTACT_DAYS`."""
    n = min(cores(), MAX_PARTS)
    if n < 2 or not hasattr(os, "fork"):
        return 1
    contacts = contact_count(source)
    return n if contacts is not None and contacts * days >= MIN_CONTACT_DAYS else 1


def splittable(campaigns: Sequence[Campaign]) -> bool:
    """Whether a replay of ``campaigns`` gives the same split by contact as whole: not
    where a daily limit lets deliveries of different contacts out in turn."""
    return all(c.daily_limit == 0 for c in campaigns)


def replay_in_parts(source: Path | str, parts: int, replay: Callable[..., T]) -> list[T]:
    """``replay(store, between=…)`` run on each of ``parts`` parts of the store at
    ``source``, side by side, each in its own process; their results, by part. The first
    part to fail (its exception, re-raised here) stops the others."""
    with scratch_parts(source, parts) as split:
        parent = os.getpid()
        children: list[tuple[int, Connection]] = []
        try:
            for path in split.paths:
                answers, answer = Pipe(duplex=False)
                pid = fork()
                if pid == 0:  # the part's process: never returns
                    answers.close()
                    _part(path, split.indexes, replay, answer, parent)
                answer.close()
                children.append((pid, answers))
            return _collect(children)
        finally:
            for pid, answers in children:
                answers.close()
                _end(pid)


def _part(
    path: Path,
    indexes: list[str],
    replay: Callable[..., T],
    answer: Connection,
    parent: int,
) -> None:
    """A part's process: replay it, send back the result (or the error), exit."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the parts
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})

        def between() -> None:
            if os.getppid() != parent:
                raise SystemExit(1)  # the parent is gone: nobody wants the result

        build_indexes(path, indexes)
        with open_store(path) as store:
            result = replay(store, between=between)
        answer.send_bytes(pickle.dumps(("done", result)))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException as exc:  # every failure goes back to the parent
        code = 1
        try:
            answer.send_bytes(pickle.dumps(("failed", exc)))
        except Exception:  # an error that does not pickle: its text
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            answer.send_bytes(pickle.dumps(("failed", RuntimeError(detail))))
    finally:
        try:
            answer.close()
            sys.stdout.flush()
        finally:
            os._exit(code)  # not the parent's cleanups (its scratch folder, its handlers)


def _collect(children: list[tuple[int, Connection]]) -> list[T]:
    """Each part's result, in order; the first failure raised."""
    results: dict[int, T] = {}
    waiting = {answers: n for n, (_, answers) in enumerate(children)}
    while waiting:
        for ready in wait(list(waiting)):
            assert isinstance(ready, Connection)
            n = waiting.pop(ready)
            try:
                outcome, value = pickle.loads(ready.recv_bytes())
            except EOFError:
                pid = children[n][0]
                raise RuntimeError(
                    f"part {n + 1} of the replay (process {pid}) ended without a result"
                ) from None
            if outcome == "failed":
                raise value
            results[n] = value
    return [results[n] for n in range(len(children))]


def _end(pid: int) -> None:
    """Stop part process ``pid`` if it still runs, and reap it."""
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)
        if finished == 0:
            os.kill(pid, signal.SIGTERM)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    except ProcessLookupError:
        os.waitpid(pid, 0)
