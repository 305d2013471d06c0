"""The render worker's own side, and the pipes between it and the process it renders for
(:mod:`regard.render.isolation` starts it, sends it requests and reads its answers).

A request is one pickled message on the requests pipe: the config and campaign (sent once
and named by a key afterwards), the instant, the options and the jobs. The worker answers
each job as it is rendered, one pickled ``(kind, value, leave)`` each, in order: ``ok``
with the message (or its stored text), ``error`` with the template's error, ``memory``
when the render ran out of its address space, ``raise`` with a fault of regard's to raise
in the parent. ``leave``: the worker ends after this answer (a new one serves the next).
Each message on a pipe is its length (8 bytes, big-endian) and its bytes.
"""

from __future__ import annotations

import array
import contextlib
import fcntl
import os
import pickle
import queue
import resource
import select
import signal
import struct
import threading
import time
from pathlib import Path
from typing import Any

from regard.collecting import fewer_collections
from regard.errors import TemplateError
from regard.render.environment import MAX_RENDER_MEMORY
from regard.render.message import Renders, Stored

_HEADER = struct.Struct(">Q")


class Gone(Exception):
    """The worker ended (or was ended) before it answered."""


def write(fd: int, payload: bytes) -> None:
    header = _HEADER.pack(len(payload))
    # an answer (kBs) goes in one write; a batch's request (MBs) is not copied to join it
    parts = (header + payload,) if len(payload) < 1 << 16 else (header, payload)
    for part in parts:
        view = memoryview(part)
        while view:
            view = view[os.write(fd, view) :]


def _read(fd: int, size: int, deadline: float | None) -> bytes:
    chunks: list[bytes] = []
    while size:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            raise Gone
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def _receive(fd: int, deadline: float | None) -> bytes:
    (size,) = _HEADER.unpack(_read(fd, _HEADER.size, deadline))
    return _read(fd, size, deadline)


class Answers:
    """The worker's answers as they arrive on pipe ``fd``, read up to 1 MB at a time (a
    batch's answers are kBs each: a few reads bring many); each answer is waited for no
    longer than its own deadline, as :func:`_receive` does."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._buffer = bytearray()
        self._at = 0  # where the next answer starts in the buffer

    def receive(self, deadline: float) -> bytes:
        buffer, start = self._buffer, self._at
        while True:
            have = len(buffer) - start
            if have >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer, start)
                end = start + _HEADER.size + size
                if len(buffer) >= end:
                    self._at = end
                    return bytes(buffer[start + _HEADER.size : end])
            if start:  # what was read already moves to the front once per read, not per answer
                del buffer[:start]
                start = self._at = 0
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self.fd, 1 << 20)
            if not chunk:
                raise Gone
            buffer += chunk


_PIPE_SIZE = 1 << 20  # a batch's answers flow without waking the parent for every 64 kB


def widen(fd: int) -> None:
    """Give the pipe of ``fd`` a buffer of :data:`_PIPE_SIZE` where Linux allows it."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", 1031)
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, set_size, _PIPE_SIZE)


def _address_space() -> int | None:
    """This process's address space in bytes (Linux), None where it cannot be read."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def close_inherited(keep: set[int]) -> None:
    """Close what the worker inherited and has no use for: the store's files, the daemon's
    lock (an flock shared with the parent would outlive a parent killed outright), sockets,
    and stdin/stdout (a caller reading the parent's output to its end must not wait for us)."""
    try:
        open_fds = {int(name) for name in os.listdir("/proc/self/fd")}
    except OSError:
        open_fds = set(range(3, 256))
    for fd in sorted(open_fds - keep - {2}):
        with contextlib.suppress(OSError):
            os.close(fd)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(null, fd)
    os.close(null)


# the signals whose handlers in this process clean up (a scratch copy, a tick's transaction)
_STOPS = {signal.SIGTERM, signal.SIGINT}


def fork() -> int:
    """``os.fork()`` with SIGTERM and SIGINT held back until it has returned. A handler
    that raises would otherwise run inside the fork's own hooks (logging's, in both
    processes), where Python prints the exception and drops it: a ``simulate`` stopped at
    that moment carried on to its end and exited 0. Held back, the signal reaches the
    parent right after the fork, in its own code, and the child drops the parent's
    handlers first (:func:`own_signals`)."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
    pid = os.fork()
    if pid != 0:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    return pid


def own_signals() -> None:
    """The worker's own handling of the stopping signals, then let them in: Ctrl-C reaches
    the parent, which ends us; SIGTERM ends us at once (not the parent's cleanups)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOPS)


def serve(requests: int, answers: int, *, ready: bool = False) -> None:
    """The worker: render each request's messages, answering each as it is done, until the
    parent closes its end. ``ready``: say so first (a spawned worker, once it has imported
    what it needs: its start is not counted against the first message's time)."""
    own_signals()
    outbox = _Outbox(answers)  # its thread started before the bound is measured
    used = _address_space()
    if used is not None:
        limit = used + MAX_RENDER_MEMORY
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    known: dict[int, Any] = {}  # the config and campaign objects sent once, by their key
    if ready:
        outbox.put(b"ready")
    try:
        with fewer_collections():  # a worker renders for as long as its parent runs
            _serve_requests(requests, outbox, known)
    finally:
        outbox.close()  # what is rendered goes out before the worker ends


class _Outbox:
    """The worker's answers on their way to the parent, which reads them when it needs
    them (a tick records one batch while the next renders): an answer is written at once
    while the pipe has room for it, else it waits in a queue for a thread that writes as
    the parent reads, and rendering goes on. Written at once whenever it can be: a render
    that hangs holding the interpreter (a huge comparison in C) would starve that thread,
    and the answers before it must reach the parent before it times out. One request's
    answers wait here at most."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        try:
            self.capacity: int | None = fcntl.fcntl(fd, getattr(fcntl, "F_GETPIPE_SZ", 1032))
        except OSError:
            self.capacity = None  # unknown: written at once, waiting for room as it must
        self._queue: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._queued = 0  # answers in the queue or being written from it
        # bytes a write surely finds room for as last asked (_room), less what was written
        # at once since: the parent's reads only make more, so it stays a lower bound and
        # the pipe is asked again only when it is used up (not once per answer)
        self._known = 0
        self._counting = threading.Lock()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def put(self, payload: bytes) -> None:
        with self._counting:
            queued = self._queued
        need = len(payload) + _HEADER.size
        if not queued:
            if self._known < need:
                self._known = self._room()
            if self._known >= need:
                write(self.fd, payload)
                self._known -= need
                return
        self._known = 0  # the thread's writes take room unseen here: asked again after it
        with self._counting:
            self._queued += 1
        self._queue.put(payload)

    def _room(self) -> int:
        """Bytes a write surely finds room for. A pipe keeps its bytes in pages and a write
        fills part of a page at worst about half (a 2,100-byte answer where the last one
        left 2,000): so half its pages, less a page for the write's own tail."""
        if self.capacity is None:
            return 1 << 62
        import termios  # a worker runs where fork does: on POSIX

        unread = array.array("i", [0])
        try:
            fcntl.ioctl(self.fd, termios.FIONREAD, unread, True)
        except OSError:
            return 1 << 62
        return (self.capacity - 2 * _PAGE) // 2 - unread[0]

    def _drain(self) -> None:
        while (payload := self._queue.get()) is not None:
            try:
                write(self.fd, payload)
            except OSError:  # the parent is gone: nobody reads
                return
            finally:
                with self._counting:
                    self._queued -= 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


_PAGE = resource.getpagesize()  # what a pipe holds its bytes in


def _serve_requests(requests: int, outbox: _Outbox, known: dict[int, Any]) -> None:
    """Render each request's messages, an answer each into ``outbox``, until the parent
    closes its end or a render leaves the worker unfit to go on."""
    while True:
        try:
            request = _receive(requests, None)
        except Gone:
            return
        reset, defined, config, campaign, now, options, stored, keep, jobs = pickle.loads(request)
        if reset:
            known.clear()
        known.update(defined)
        renders: Renders | None = None
        storing = Stored(known[config], known[campaign], options["links"]) if stored else None
        for contact, event, occasion, delivery_id, to in jobs:
            leave = False
            answer: tuple[str, Any]
            try:
                if renders is None:  # the batch's files checked for changes once, here
                    renders = Renders(known[config], known[campaign], now, **options)
                message = renders.render(contact, event, occasion, delivery_id)
                answer = (
                    "ok",
                    message if storing is None else storing.text(message, to, delivery_id, keep),
                )
            except TemplateError as exc:
                answer = ("error", str(exc))
                leave = isinstance(exc.__context__, MemoryError)  # start afresh after that
            except MemoryError:
                answer, leave = ("memory", None), True
            except Exception as exc:  # a fault of regard's, raised in the caller as it was here
                answer = ("raise", exc)
            try:
                payload = pickle.dumps((*answer, leave))
            except Exception:
                payload = pickle.dumps(("raise", RuntimeError(repr(answer[1])), leave))
            outbox.put(payload)
            if leave:
                return
