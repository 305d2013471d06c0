"""``regard contacts forget``: erase a contact's personal data everywhere.

- the contact row is deleted;
- its events stay as anonymous rows: ``contact_id`` becomes ``forgotten:<sha256 of the id>``
  and every property is dropped (a shop's free-form properties may hold anything personal),
  so counts, amounts and times still add up in reports;
- its deliveries keep their state for the counts, with the same pseudonym, while the
  rendered message (``to``, subject, texts), the provider's answers and the log details
  are erased; deliveries not sent yet are cancelled;
- its suppressions stay (an unsubscribe must outlive the erasure) with the address
  replaced by :func:`~regard.store.suppressions.address_hash`;
- its lines are removed from the outbox files of ``file`` providers;
- the id is remembered as a sha256 in ``forgotten``: importing it again skips its rows.

Then the WAL is checkpointed and truncated, so that no old page with the data lingers in
it (``secure_delete`` zeroes what is freed in the database file itself).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from regard.config import Config
from regard.errors import InputError
from regard.store import Store, address_hash
from regard.store.importer import forgotten_hash
from regard.times import to_epoch, utcnow


@dataclass
class ForgetResult:
    """What was erased."""

    contact_id: str
    pseudonym: str
    events: int = 0
    deliveries: int = 0
    cancelled: int = 0
    suppressions: int = 0
    outbox_lines: int = 0
    wal_truncated: bool = False
    already_forgotten: bool = False


def pseudonym(contact_id: str) -> str:
    """The contact id that anonymous rows of a forgotten contact carry."""
    return f"forgotten:{forgotten_hash(contact_id)}"


def forget_contact(store: Store, config: Config, contact_id: str) -> ForgetResult:
    """Erase ``contact_id``'s personal data everywhere (see the module docstring).

    Raises InputError for an id that is neither in the store nor forgotten before.
    """
    alias = pseudonym(contact_id)
    result = ForgetResult(contact_id=contact_id, pseudonym=alias)
    now = to_epoch(utcnow())
    with store.write() as conn:
        contact = conn.execute("SELECT * FROM contacts WHERE id = ?", (contact_id,)).fetchone()
        if contact is None:
            known = conn.execute(
                "SELECT 1 FROM forgotten WHERE id_hash = ?", (forgotten_hash(contact_id),)
            ).fetchone()
            if known is None:
                raise InputError(f"unknown contact {contact_id!r}")
            result.already_forgotten = True
            return result
        personal = [
            str(contact[k])
            for k in ("email", "phone", "first_name", "last_name", "company", "street")
            if contact[k]
        ]
        result.events = conn.execute(
            "UPDATE events SET contact_id = ?, properties = '{}' WHERE contact_id = ?",
            (alias, contact_id),
        ).rowcount
        result.cancelled = conn.execute(
            "UPDATE deliveries SET state = 'cancelled', reason = 'forgotten', updated_at = ? "
            "WHERE contact_id = ? AND state IN ('pending', 'sending')",
            (now, contact_id),
        ).rowcount
        conn.execute(
            "UPDATE delivery_log SET detail = NULL WHERE delivery_id IN "
            "(SELECT id FROM deliveries WHERE contact_id = ?)",
            (contact_id,),
        )
        for row in conn.execute(
            "SELECT id, reason FROM deliveries WHERE contact_id = ? AND reason IS NOT NULL",
            (contact_id,),
        ).fetchall():
            conn.execute(
                "UPDATE deliveries SET reason = ? WHERE id = ?",
                (_scrub(row["reason"], personal), row["id"]),
            )
        result.deliveries = conn.execute(
            "UPDATE deliveries SET contact_id = ?, message = NULL, last_error = NULL, "
            "lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE contact_id = ?",
            (alias, now, contact_id),
        ).rowcount
        addresses = [a for a in (contact["email"], contact["phone"]) if a]
        rows = conn.execute(
            "SELECT rowid, address, reason FROM suppressions WHERE contact_id = ? "
            f"OR address IN ({','.join('?' * len(addresses)) or 'NULL'})",
            (contact_id, *addresses),
        ).fetchall()
        for row in rows:
            address = row["address"]
            if address and not address.startswith("sha256:"):
                address = address_hash(address)
            conn.execute(
                "UPDATE suppressions SET contact_id = ?, address = ?, reason = ? WHERE rowid = ?",
                (alias, address, _scrub(row["reason"], personal), row["rowid"]),
            )
        result.suppressions = len(rows)
        conn.execute("DELETE FROM contacts WHERE id = ?", (contact_id,))
        conn.execute(
            "INSERT OR REPLACE INTO forgotten (id_hash, forgotten_at) VALUES (?, ?)",
            (forgotten_hash(contact_id), now),
        )
    for path in outbox_files(config):
        result.outbox_lines += remove_outbox_lines(path, contact_id)
    result.wal_truncated = truncate_wal(store)
    return result


def outbox_files(config: Config) -> list[Path]:
    """The files regard's own ``file`` providers append delivery records to."""
    from regard.providers.file import outbox_path

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


def _scrub(text: str | None, personal: list[str]) -> str | None:
    if not text:
        return text
    for value in personal:
        text = text.replace(value, "[erased]")
    return text


def truncate_wal(store: Store, attempts: int = 20) -> bool:
    """Checkpoint the WAL into the database and truncate it to zero bytes. Returns False
    when a reader kept it busy for every attempt (the next checkpoint will finish it)."""
    for _ in range(attempts):
        busy = store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
        if busy == 0:
            return True
        time.sleep(0.05)
    return False
