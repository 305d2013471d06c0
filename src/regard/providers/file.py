"""``type = "file"``: append each delivery record as one JSON line; any channel.

The line is flushed and fsynced before the delivery counts as sent, so a crash right
after ``Sent`` cannot lose a message that the store calls sent. A line is written whole
or not at all: a short write (a full disk, a file-size limit) is undone by truncating the
file back to its length before, and the delivery is retried later; a torn last line left
by an older version or a crash is ended with a newline before the next record, so every
record stays readable (and ``forget`` can find it). A forgotten contact's
lines are removed again (:func:`remove_outbox_lines`, called by :mod:`regard.forget`).
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from regard.errors import InputError
from regard.providers.base import Provider
from regard.providers.outcomes import OnUnknown, Outcome, Retry, Sent
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

if TYPE_CHECKING:
    from regard.config import Config, ProviderTable


class FileOptions(StrictModel):
    path: str = "outbox/messages.jsonl"


def outbox_path(config: Config, table: ProviderTable) -> Path:
    """The file a ``type = "file"`` provider table appends to, resolved against the config."""
    return config.resolve(FileOptions.model_validate(table.options).path)


def outbox_files(config: Config) -> list[Path]:
    """The files regard's own ``file`` providers append delivery records to."""
    return [
        outbox_path(config, table) for table in config.providers.values() if table.type == "file"
    ]


def remove_outbox_lines(path: Path, contact_id: str) -> int:
    """Rewrite ``path`` without the records of ``contact_id``; returns how many went.

    Streams through a temporary file in the same folder, fsynced, then atomically replaces
    the original. A line appended by a running daemon while this runs is not lost: the
    rewrite starts over when the file grew in the meantime.
    """
    if not path.is_file():
        return 0
    for _ in range(10):
        size = path.stat().st_size
        removed = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with path.open("rb") as source, os.fdopen(fd, "wb") as target:
                for line in source:
                    if _belongs_to(line, contact_id):
                        removed += 1
                    else:
                        target.write(line)
                target.flush()
                os.fsync(target.fileno())
            if removed == 0:
                os.unlink(tmp)
                return 0
            os.chmod(tmp, path.stat().st_mode & 0o777)
            if path.stat().st_size != size:
                os.unlink(tmp)
                continue
            os.replace(tmp, path)
            return removed
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
    raise InputError(f"{path}: the outbox keeps growing; stop the daemon and run forget again")


def _belongs_to(line: bytes, contact_id: str) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return isinstance(record, dict) and record.get("contact_id") == contact_id


class FileProvider(Provider):
    type = "file"
    channels = frozenset({"email", "sms", "card", "webhook"})
    Options = FileOptions
    card_max_chars = 1000
    # the same record twice carries the same delivery id: readers of the outbox drop it
    on_unknown = OnUnknown.DEDUPLICATES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = outbox_path(self.config, self.table)
        self._lock = asyncio.Lock()

    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        try:
            async with self._lock:
                await asyncio.to_thread(append_line, self.path, line.encode("utf-8"))
        except OSError as exc:
            # the disk is full, the folder read-only…: nothing of the line is left, try later
            return Retry(f"outbox {self.path}: cannot write: {exc.strerror or type(exc).__name__}")
        return Sent(message_id=None)


def append_line(path: Path, data: bytes) -> None:
    """Append ``data`` (one line, ending in a newline) to ``path`` whole and fsync it, or
    raise OSError leaving the file as it was (a short write is truncated away)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_APPEND: each write lands at the end, also when other processes append
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        start = os.fstat(fd).st_size
        if start and os.pread(fd, 1, start - 1) != b"\n":
            data = b"\n" + data  # end a torn line (a crash mid-write) before this record
        written = 0
        try:
            while written < len(data):
                n = os.write(fd, data[written:])
                if n <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                written += n
            os.fsync(fd)
        except OSError:
            if written and os.fstat(fd).st_size == start + written:
                os.ftruncate(fd, start)  # no torn line behind (nobody appended since)
                os.fsync(fd)
            raise
    finally:
        os.close(fd)
