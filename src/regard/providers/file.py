"""``type = "file"``: append each delivery record as one JSON line; any channel.

The line is flushed and fsynced before the delivery counts as sent, so a crash right
after ``Sent`` cannot lose a message that the store calls sent.
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from regard.providers.base import Outcome, Provider, Sent
from regard.validation import StrictModel

if TYPE_CHECKING:
    from regard.config import Config, ProviderTable


class FileOptions(StrictModel):
    path: str = "outbox/messages.jsonl"


def outbox_path(config: Config, table: ProviderTable) -> Path:
    """The file a ``type = "file"`` provider table appends to, resolved against the config."""
    return config.resolve(FileOptions.model_validate(table.options).path)


class FileProvider(Provider):
    type = "file"
    channels = frozenset({"email", "sms", "card", "webhook"})
    Options = FileOptions
    card_max_chars = 1000

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.path = outbox_path(self.config, self.table)
        self._lock = asyncio.Lock()

    async def send(self, record: dict[str, Any], client: httpx.AsyncClient) -> Outcome:
        line = json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n"
        async with self._lock:
            await asyncio.to_thread(self._append, line.encode("utf-8"))
        return Sent(message_id=None)

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND writes of one line are atomic with respect to other processes appending
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
