"""``regard contacts forget``: erase a contact's personal data everywhere regard keeps it.

First the store (:mod:`regard.store.erase`: the contact row goes, events and deliveries
stay as anonymous counts, unsubscribes as hashes), then the contact's lines in the outbox
files of ``file`` providers, then the store's write-ahead log is checkpointed and
truncated, so that no old page with the data lingers in it. PostgreSQL keeps the old
versions of changed and deleted rows in the tables' files until VACUUM reclaims them
(``until_vacuum`` names those tables), and in its write-ahead log, archives and backups
until they expire: the command says so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from regard.config import Config
from regard.providers.file import outbox_files, remove_outbox_lines
from regard.store import Store
from regard.store.erase import Erasure, pseudonym

__all__ = ["ForgetResult", "forget_contact", "pseudonym"]


@dataclass(frozen=True)
class ForgetResult(Erasure):
    """What was erased: the store's part, the outbox lines, and whether the WAL is clear
    (``already_forgotten``: nothing, it had been before)."""

    outbox_lines: int = 0
    wal_truncated: bool = False
    # PostgreSQL: the tables whose old row versions stay on disk until VACUUM
    until_vacuum: tuple[str, ...] = ()


# the tables an erasure changes or deletes rows of (regard.store.erase)
ERASED_TABLES = ("contacts", "events", "deliveries", "delivery_log", "suppressions")


def forget_contact(store: Store, config: Config, contact_id: str) -> ForgetResult:
    """Erase ``contact_id``'s personal data from the store and the outbox files, then
    truncate the WAL (``wal_truncated`` is False when another process kept it busy).

    Raises InputError for an id that is neither in the store nor forgotten before.
    """
    erased = store.contacts.forget(contact_id)
    if erased.already_forgotten:
        return ForgetResult(**asdict(erased))
    outbox_lines = sum(remove_outbox_lines(path, contact_id) for path in outbox_files(config))
    return ForgetResult(
        **asdict(erased),
        outbox_lines=outbox_lines,
        wal_truncated=store.checkpoint(),
        until_vacuum=ERASED_TABLES if store.dialect == "postgresql" else (),
    )
