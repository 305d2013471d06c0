"""The daemon's log: one line per tick and per failure, for people or for machines.

``text`` reads well on a terminal and in the journal; ``json`` is one object a line with
the same facts as fields. Secrets never reach the log: every value the config took from
the environment (``${NAME}``) and every provider option that looks like a credential is
replaced by ``***`` in the formatted line, whatever logged it. Message bodies are never
logged at all.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Literal, TextIO

from regard.config import Config, url_password
from regard.times import iso

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

logger = logging.getLogger("regard.daemon")

_SECRET_KEY = re.compile(r"secret|token|password|passwd|api_?key|auth|sid|credential", re.I)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words
# fields a LogRecord always has; anything else passed as ``extra`` is a fact of the line
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


def config_secrets(config: Config) -> set[str]:
    """The values to keep out of logs: environment substitutions and credential options."""
    secrets: set[str] = set()
    if config.path is not None and config.path.is_file():
        text = config.path.read_text(encoding="utf-8")
        secrets.update(os.environ.get(name, "") for name in _ENV_REF.findall(text))
    if config.store_is_url:  # a database password written into the URL itself
        secrets.add(url_password(config.store) or "")
    for table in config.providers.values():
        for key, value in table.options.items():
            if _SECRET_KEY.search(key):
                secrets.update(_strings(value))
    return {s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


class Redacting(logging.Formatter):
    """A formatter that replaces known secrets in whatever its inner formatter produced."""

    def __init__(self, inner: logging.Formatter, secrets: Iterable[str]) -> None:
        super().__init__()
        self.inner = inner
        # as written and as a JSON string would escape it; longest first, so a secret that
        # contains another is replaced whole
        forms = {form for s in secrets for form in (s, json.dumps(s, ensure_ascii=False)[1:-1])}
        ordered = sorted(forms, key=len, reverse=True)
        self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        return self._pattern.sub("***", line) if self._pattern else line


def _timestamp(record: logging.LogRecord) -> str:
    return iso(int(record.created)) or ""


def facts(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields a call passed with ``extra=``."""
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


class TextFormatter(logging.Formatter):
    """``2026-11-22T07:30:00Z INFO  tick: …`` with the traceback, if any, below."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_timestamp(record)} {record.levelname:<7} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, and the call's structured facts."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update(facts(record))
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup_logging(
    log_format: LogFormat,
    secrets: Iterable[str] = (),
    *,
    level: int = logging.INFO,
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send regard's and APScheduler's records to ``stream`` (stderr) in ``log_format``.

    Returns the handler so a caller can remove it again.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    inner = JSONFormatter() if log_format == "json" else TextFormatter()
    handler.setFormatter(Redacting(inner, secrets))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # APScheduler narrates every run at INFO; the daemon logs its own line per tick
    quiet = level > logging.DEBUG
    logging.getLogger("apscheduler").setLevel(logging.ERROR if quiet else level)
    # httpx logs each request line (URLs can carry tokens) at INFO
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING if quiet else level)
    return handler
