"""Rendering in a process of its own, with a hard bound on its time and memory.

The sandbox (:mod:`regard.render.environment`) refuses the known ways a template makes the
renderer build huge texts or spin, each with the template's line. It cannot bound a single
operation that runs inside the interpreter without returning to Python code in between:
comparing two nested lists that share their parts (``a6 == b6`` compares 10^6 leaves at
six levels, 10^10 at ten, in one call), printing one, sorting one. No check in Python runs
during such a call, and a clock checked between calls never fires. So every message is
rendered in a worker process: forked from this one when the first message is rendered
(it inherits the loaded code, nothing is imported again), kept for the next messages, and
given at most :data:`MAX_RENDER_MEMORY` more address space than it had when it started
(``RLIMIT_AS``: an allocation beyond it fails inside the worker, which answers "refused" and
leaves) and :data:`MAX_RENDER_SECONDS` per message (then it is killed, and the next message
starts a new one). A message the worker refused, or that killed it, is a
:class:`~regard.errors.TemplateError` naming the template file, as any other template
problem; nothing else changes for the caller (the tick, ``check``, ``preview``).

Where ``fork`` does not exist the message is rendered in this process (the sandbox's checks
only). Measured figures: docs/templates.md, "The sandbox". The worker's own side, and the
pipes' protocol: :mod:`regard.render.worker`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from regard.errors import TemplateError
from regard.render.environment import MAX_RENDER_MEMORY, MAX_RENDER_SECONDS, pick_template
from regard.render.message import Message, Renders, Stored
from regard.render.worker import (
    Answers,
    Gone,
    close_inherited,
    fork,
    own_signals,
    serve,
    widen,
    write,
)
from regard.store.contacts import ContactRow

if TYPE_CHECKING:
    from regard.campaigns.model import Campaign
    from regard.config import Config
    from regard.providers.base import Provider
    from regard.render.unsubscribe import Links

SPAWN_SECONDS = 60.0  # how long a spawned worker may take to start (not a message's time)


class Worker:
    """One render worker and the pipes to it: forked from this process while it runs one
    thread, started as a fresh interpreter (``spawn``) once other threads run (a daemon's
    scheduler, dispatch lanes, its HTTP server), because a child forked while another
    thread holds a lock (the logging module's, an allocator's, an import's) may wait for
    it forever."""

    def __init__(self, *, spawn: bool | None = None) -> None:
        if spawn is None:
            spawn = threading.active_count() > 1
        requests_read, self._requests = os.pipe()
        self._answers, answers_write = os.pipe()
        for fd in (self._requests, self._answers):
            widen(fd)
        self._process: subprocess.Popen[bytes] | None = None
        self._reader = Answers(self._answers)
        if spawn:
            self._process = _spawn(requests_read, answers_write)
            pid = self._process.pid
            os.close(requests_read)
            os.close(answers_write)
            try:  # a new interpreter imports regard first: seconds on a busy machine
                self._reader.receive(time.monotonic() + SPAWN_SECONDS)
            except (TimeoutError, Gone):
                self.pid = pid
                self.end()
                raise Gone from None
        else:
            pid = fork()
        if pid == 0:  # pragma: no cover - the worker's side (its coverage is not collected)
            code = 0
            try:
                own_signals()
                close_inherited(keep={requests_read, answers_write})
                serve(requests_read, answers_write)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        if not spawn:
            os.close(requests_read)
            os.close(answers_write)
        self.pid = pid
        self.spawned = spawn
        self._sent: dict[int, Any] = {}  # what the worker holds, by id (kept alive here)

    def send(
        self,
        config: Config,
        campaign: Campaign,
        now: datetime,
        options: dict[str, Any],
        jobs: list[Job],
        *,
        stored: bool = False,
        keep: Sequence[str] | None = None,
    ) -> None:
        """Ask for the messages of ``jobs``, all in one request: the config and the
        campaign (the same objects for many batches) are sent once and named by a key
        after that; ``stored``: each as the JSON text its delivery stores
        (:class:`~regard.render.message.Stored`), with ``keep`` only those of its keys.
        Raises Gone when the worker has ended."""
        reset = len(self._sent) > 64
        if reset:
            self._sent.clear()
        defined = {id(o): o for o in (config, campaign) if id(o) not in self._sent}
        self._sent.update(defined)
        plain = [
            (_plain(j.contact), _plain(j.event) if j.event is not None else None, j.occasion,
             j.delivery_id, j.to)
            for j in jobs
        ]  # fmt: skip
        request = pickle.dumps(
            (reset, defined, id(config), id(campaign), now, options, stored, keep, plain)
        )
        try:
            write(self._requests, request)
        except BrokenPipeError:
            raise Gone from None

    def answer(self, seconds: float) -> tuple[str, Any, bool]:
        """The worker's answer to the next message of the request (what it is, its value,
        whether the worker leaves after it); TimeoutError when it takes longer than
        ``seconds``, Gone when the worker ended without answering."""
        answer: tuple[str, Any, bool] = pickle.loads(
            self._reader.receive(time.monotonic() + seconds)
        )
        return answer

    def end(self) -> None:
        """Kill the worker (if it still runs) and collect it."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        for fd in (self._requests, self._answers):
            with contextlib.suppress(OSError):
                os.close(fd)


def _plain(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    """A mapping as the worker can unpickle it: a dict as it is (not copied), a contact's
    row as its stored values (the worker converts it), anything else as a dict."""
    return mapping if type(mapping) is dict or type(mapping) is ContactRow else dict(mapping)


def _spawn(requests: int, answers: int) -> subprocess.Popen[bytes]:
    """A worker in a new interpreter (fork and exec: nothing of this process's threads or
    locks comes along), serving on the pipe ends ``requests`` and ``answers``."""
    import regard

    env = dict(os.environ)
    source = str(Path(regard.__file__).resolve().parent.parent)  # this very regard
    env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH")) if p)
    return subprocess.Popen(
        [sys.executable, "-c", _SPAWNED, str(requests), str(answers)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        pass_fds=(requests, answers),
        env=env,
    )


# what a spawned worker runs: the loop of a forked one
_SPAWNED = (
    "import sys\n"
    "import regard.campaigns.model, regard.config\n"  # before the worker measures its size
    "from regard.render.worker import serve\n"
    "serve(int(sys.argv[1]), int(sys.argv[2]), ready=True)\n"
)


def start() -> None:
    """Start this process's render worker now (forked, while one thread runs), so that a
    daemon need not start one later beside its threads. A worker that breaks a bound is
    replaced then by a spawned one (:class:`Worker`). None while this process renders
    its own templates (:func:`own_templates`)."""
    if hasattr(os, "fork") and not _own_templates.get():
        with _lock:
            _running()


class Job(NamedTuple):
    """One message to render: the contact, the triggering event, the occasion, the
    delivery id (for the unsubscribe link) and, for a stored message, its ``to``."""

    contact: Mapping[str, Any]
    event: Mapping[str, Any] | None
    occasion: str
    delivery_id: str = ""
    to: Any = None


_own_templates: ContextVar[bool] = ContextVar("own_templates", default=False)


@contextlib.contextmanager
def own_templates() -> Iterator[None]:
    """Render in this process while the block runs: for regard's own templates alone (the
    demo's, written a moment before into a folder of its own), whose renders need no bound
    and whose thousands of messages should not pay a process's round trip each."""
    token = _own_templates.set(True)
    try:
        yield
    finally:
        _own_templates.reset(token)


_lock = threading.Lock()
_worker: list[Worker] = []  # the running worker of this process, if any
_owner: list[int] = []  # the pid that forked it: a forked child of ours starts its own


def _current() -> Worker | None:
    """This process's running worker, if any."""
    return _worker[0] if _worker and _owner == [os.getpid()] else None


def _running() -> Worker:
    current = _current()
    if current is not None:
        return current
    _worker[:] = [Worker()]
    _owner[:] = [os.getpid()]
    return _worker[0]


def _retire() -> None:
    current = _current()
    if current is not None:
        current.end()
    _worker.clear()


def render_message(
    config: Config,
    campaign: Campaign,
    contact: Mapping[str, Any],
    event: Mapping[str, Any] | None,
    occasion: str,
    now: datetime,
    *,
    provider: Provider | type[Provider] | None = None,
    links: Links | None = None,
    delivery_id: str = "",
) -> Message:
    """:func:`regard.render.message.render_message`, run in the worker process, bounded by
    :data:`MAX_RENDER_SECONDS` and :data:`MAX_RENDER_MEMORY`. Raises TemplateError as the
    in-process render does, and for a message that broke a bound."""
    job = Job(contact, event, occasion, delivery_id)
    (result,) = render_messages(config, campaign, [job], now, provider=provider, links=links)
    if isinstance(result, TemplateError):
        raise result
    return result


def render_messages(
    config: Config,
    campaign: Campaign,
    jobs: Sequence[Job],
    now: datetime,
    *,
    provider: Provider | type[Provider] | None = None,
    links: Links | None = None,
) -> list[Message | TemplateError]:
    """The messages of ``jobs`` (one campaign, rendered at ``now``), each a Message or the
    TemplateError its render raised, in order: sent to the worker in one request and
    answered one by one, each message bounded by :data:`MAX_RENDER_SECONDS` and
    :data:`MAX_RENDER_MEMORY` as a single render is. A message that breaks a bound ends
    that worker; the messages after it go to a fresh one."""
    # without ``stored`` no answer is a text
    return cast(
        list[Message | TemplateError],
        _render_all(config, campaign, jobs, now, provider, links, stored=False),
    )


def _render_all(
    config: Config,
    campaign: Campaign,
    jobs: Sequence[Job],
    now: datetime,
    provider: Provider | type[Provider] | None,
    links: Links | None,
    *,
    stored: bool,
    keep: Sequence[str] | None = None,
) -> list[Message | str | TemplateError]:
    """The messages of ``jobs``, each a Message (or with ``stored`` its stored text, of
    the keys ``keep``) or the TemplateError its render raised."""
    if provider is not None and not isinstance(provider, type):
        provider = type(provider)  # what the render asks of it is its class's card limit
    options: dict[str, Any] = {"provider": provider, "links": links}
    if not hasattr(os, "fork") or _own_templates.get():
        return _render_here(config, campaign, jobs, now, options, stored=stored, keep=keep)
    flight = _Request(config, campaign, jobs, now, options, stored, keep)
    with _lock:
        _land()
        flight.finish()
    return flight.results()


def send_stored(
    config: Config,
    campaign: Campaign,
    jobs: Sequence[Job],
    now: datetime,
    *,
    links: Links | None,
    keep: Sequence[str] | None = None,
) -> Callable[[], list[str | TemplateError]]:
    """:func:`render_messages`, each message as the JSON text its delivery stores (made
    in the worker by :class:`~regard.render.message.Stored`, sent to ``Job.to``) or the
    TemplateError its render raised, asked for now and collected later: the request goes
    to the worker at once, the worker renders while this process goes on, and the
    function returned collects the answers (the bounds hold as in
    :func:`render_messages`: each answer is waited for no longer than its own time).
    Several requests may be in flight: the worker answers them in the order they were sent,
    a collect first collects those sent before it, and a render that waits for its
    messages (:func:`render_messages`) first collects them all. Nothing of this process
    waits meanwhile (the worker keeps its answers until they are read)."""
    options: dict[str, Any] = {"provider": None, "links": links}
    if not hasattr(os, "fork") or _own_templates.get():
        done = cast(list[str | TemplateError], _render_here(config, campaign, jobs, now, options,
                                                            stored=True, keep=keep))  # fmt: skip
        return lambda: done
    flight = _Request(config, campaign, jobs, now, options, True, keep)
    with _lock:
        if _stale():  # asked of a worker that has ended: asked again, and read, first
            _land()
        flight.send()
        _flying.append(flight)

    def collect() -> list[str | TemplateError]:
        with _lock:
            if any(r is flight for r in _flying):
                _land(flight)
        return cast(list[str | TemplateError], flight.results())

    return collect


def _render_here(
    config: Config,
    campaign: Campaign,
    jobs: Sequence[Job],
    now: datetime,
    options: dict[str, Any],
    *,
    stored: bool,
    keep: Sequence[str] | None = None,
) -> list[Message | str | TemplateError]:
    """The messages of ``jobs`` rendered in this process (no fork, or regard's own
    templates)."""
    renders = Renders(config, campaign, now, **options)
    storing = Stored(config, campaign, options["links"]) if stored else None
    results: list[Message | str | TemplateError] = []
    for job in jobs:
        try:
            message = renders.render(job.contact, job.event, job.occasion, job.delivery_id)
        except TemplateError as exc:
            results.append(exc)
            continue
        results.append(
            message if storing is None else storing.text(message, job.to, job.delivery_id, keep)
        )
    return results


_flying: list[_Request] = []  # the requests sent and not collected yet, in order (under _lock)


def _land(through: _Request | None = None) -> None:
    """Collect the requests in flight in the order they were sent, up to ``through``
    (default: all of them; under ``_lock``): their answers wait in them for whoever sent
    them. A request whose worker has ended since it was sent is asked again of a fresh
    one; then every request in flight is collected at once, so that no request is ever
    sent to the fresh worker before one asked of it again (the worker answers in order)."""
    while _flying:
        request = _flying.pop(0)
        request.finish()
        if request is through and not _stale():
            return


def _stale() -> bool:
    """Whether a request in flight was asked of a worker that has ended since."""
    current = _current()
    return any(r.asked not in (None, current) for r in _flying)


class _Request:
    """The messages of one request: asked of the worker, answered one by one, and asked
    again of a fresh worker for those after one that broke a bound."""

    def __init__(
        self,
        config: Config,
        campaign: Campaign,
        jobs: Sequence[Job],
        now: datetime,
        options: dict[str, Any],
        stored: bool,
        keep: Sequence[str] | None = None,
    ) -> None:
        self.config, self.campaign, self.jobs = config, campaign, jobs
        self.now, self.options, self.stored, self.keep = now, options, stored, keep
        self._results: list[Message | str | TemplateError | None] = [None] * len(jobs)
        self._left = list(range(len(jobs)))
        self._timed_out: set[int] = set()  # tried once and out of time: tried once more
        self._worker: Worker | None = None  # asked, its answers not read yet
        self._raised: BaseException | None = None

    def send(self) -> None:
        """Ask the worker for the messages still to render (under ``_lock``)."""
        self._left = [
            n
            for n in self._left
            if not _refused_at_once(self.config, self.campaign, self.jobs, n, self._results)
        ]
        if self._left:
            try:
                self._worker = _send(self.config, self.campaign, self.now, self.options,
                                     self.stored, self.jobs, self._left, self._results,
                                     self.keep)  # fmt: skip
            except BaseException:
                _retire()
                raise
            if self._worker is None:
                self._left = []

    @property
    def asked(self) -> Worker | None:
        """The worker whose answers it waits for (None: none)."""
        return self._worker

    def finish(self) -> None:
        """Read every answer (under ``_lock``), asking a fresh worker for the rest when one
        ended before the last (or before it was read at all, while another request was
        collected); what regard itself raised is raised by :meth:`results`."""
        if self._worker is not None and self._worker is not _current():
            self._worker = None  # its worker ended meanwhile: asked again below
        try:
            while self._left:
                if self._worker is None:
                    self.send()
                    continue
                worker, self._worker = self._worker, None
                self._left = _collect(worker, self.config, self.campaign, self.jobs,
                                      self._left, self._results, self._timed_out)  # fmt: skip
        except BaseException as exc:
            _retire()  # its answers to this request are no use to anyone now
            self._left, self._worker = [], None
            self._raised = exc
            if not isinstance(exc, Exception):
                raise  # Ctrl-C and exits go on at once, whoever collects

    def results(self) -> list[Message | str | TemplateError]:
        if self._raised is not None:
            raise self._raised
        return [r for r in self._results if r is not None]


def _send(
    config: Config,
    campaign: Campaign,
    now: datetime,
    options: dict[str, Any],
    stored: bool,
    jobs: Sequence[Job],
    left: list[int],
    results: list[Message | str | TemplateError | None],
    keep: Sequence[str] | None,
) -> Worker | None:
    """Ask the worker for the jobs numbered ``left`` (under ``_lock``); None, their results
    set, when no worker could be started."""
    for attempt in (1, 2):  # a worker found ended since the last request: once more
        try:
            worker = _running()
            worker.send(
                config, campaign, now, options, [jobs[n] for n in left],
                stored=stored, keep=keep,
            )  # fmt: skip
            return worker
        except Gone:
            _retire()
            _land()  # those asked of the worker that ended: asked again, and read, first
            if attempt == 2:
                for n in left:
                    results[n] = TemplateError(
                        f"{_where(config, campaign, jobs[n].contact)}: not rendered: the "
                        "process that renders messages could not be started"
                    )
    return None


def _collect(
    worker: Worker,
    config: Config,
    campaign: Campaign,
    jobs: Sequence[Job],
    left: list[int],
    results: list[Message | str | TemplateError | None],
    timed_out: set[int],
) -> list[int]:
    """Read the worker's answers to the jobs numbered ``left`` (under ``_lock``), set their
    results as they come, and return the numbers still to ask a fresh worker for when it
    stopped before the end. A render that runs out of time is tried once more in a fresh
    worker before it is refused: the worker that timed out may have hung for a cause of its
    own, and one such hang must not refuse the template for good."""
    for k, n in enumerate(left):
        contact = jobs[n].contact
        try:
            kind, value, leaving = worker.answer(MAX_RENDER_SECONDS)
        except TimeoutError:
            _retire()
            if n not in timed_out:
                timed_out.add(n)
                return left[k:]
            where = _where(config, campaign, contact)
            _too_slow[where] = _stamp(where)
            results[n] = TemplateError(
                f"{where}: refused: rendering took longer than {MAX_RENDER_SECONDS:g} s"
            )
            return left[k + 1 :]
        except Gone:
            _retire()
            results[n] = TemplateError(
                f"{_where(config, campaign, contact)}: refused: the process rendering it "
                "ended before it answered"
            )
            return left[k + 1 :]
        if kind == "raise":
            raise value
        if kind == "memory":
            results[n] = TemplateError(
                f"{_where(config, campaign, contact)}: refused: rendering needed more than "
                f"{MAX_RENDER_MEMORY // 2**20} MB"
            )
        else:
            results[n] = TemplateError(str(value)) if kind == "error" else value
        if leaving:
            _retire()
            return left[k + 1 :]
    return []


def _refused_at_once(
    config: Config,
    campaign: Campaign,
    jobs: Sequence[Job],
    n: int,
    results: list[Message | str | TemplateError | None],
) -> bool:
    """Whether the message file of job ``n`` ran out of time before and has not changed
    since (its result is set then)."""
    if not _too_slow:
        return False
    where = _where(config, campaign, jobs[n].contact)
    if where not in _too_slow or _too_slow[where] != _stamp(where):
        return False
    results[n] = TemplateError(
        f"{where}: refused: a message of this template took longer than "
        f"{MAX_RENDER_SECONDS:g} s; it is not rendered again until the file changes"
    )
    return True


# message files a render of which ran out of time, with their modification time then: the
# next contacts' messages are refused at once (a tick of a thousand contacts would otherwise
# wait five seconds for each), until the file is changed
_too_slow: dict[Path, int | None] = {}


def _stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _where(config: Config, campaign: Campaign, contact: Mapping[str, Any]) -> Path:
    """The message file the contact's locale picks (what a bound-breaking render was)."""
    locale = str(contact.get("locale") or config.locale)
    folder = config.templates_dir
    return pick_template(folder, campaign.template, locale) or folder / f"{campaign.template}.j2"
