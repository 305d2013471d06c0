"""``type = "smtp"``: e-mail through the shop's own mailbox (Strato, IONOS, all-inkl,
Hetzner, Microsoft 365, Google Workspace, a Postfix of its own), with aiosmtplib.

The wire format is SMTP itself (RFC 5321) with STARTTLS (RFC 3207) or implicit TLS
(RFC 8314, port 465) and AUTH (RFC 4954); the message is built with the standard
library's ``email`` package: ``multipart/alternative`` with the text and the HTML part
(quoted-printable UTF-8), headers encoded per RFC 2047 where they hold umlauts, a
``Message-ID`` made of the delivery id (the same on every attempt), ``Date``, the
delivery's own ``headers`` (List-Unsubscribe, List-Unsubscribe-Post: RFC 2369, RFC 8058)
and ``Reply-To`` when ``[sender]`` has one.

How each reply is read:

- 4xx anywhere, a connection lost or a timeout before the end of the message was sent:
  ``Retry`` (the server cannot have taken it);
- 550, 551 or 553 to ``RCPT TO`` (with no enhanced code, or one of 5.1.x / 5.2.1: the
  mailbox does not exist, has moved, is disabled): ``Dead``, and the address has bounced;
  other 5xx to the recipient or the message: ``Dead``;
- the server refuses the login, our sender (5xx to ``MAIL FROM``), TLS or the
  connection itself (5xx greeting): ``Paused`` — the account cannot send, not this mail;
- the connection lost or the time up after the end of the message was sent and before
  the reply: the outcome is unknown. SMTP can neither de-duplicate nor be asked, so the
  delivery becomes ``unconfirmed`` — or, with ``on_unknown = "resend"``, it is sent
  again (the recipient may then get it twice: e-mail is cheap, a card is not).

One connection serves one send at a time and is kept for the next (no new TLS handshake
and login per mail); an adapter holds at most ``max_connections`` of them (default:
``[delivery] concurrency``), closed with QUIT in ``aclose``.
"""

from __future__ import annotations

import asyncio
import binascii
import email.utils
import functools
import ssl
from collections.abc import Mapping
from email.charset import BASE64, Charset
from email.header import Header
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTPUTF8
from pathlib import Path
from typing import Any, Literal, cast

import aiosmtplib
import httpx
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings
from pydantic import Field, SecretStr, model_validator

from regard.errors import ProviderError
from regard.providers.http import is_loopback
from regard.providers.outcomes import Dead, OnUnknown, Outcome, Paused, Retry, Sent, Unknown
from regard.providers.resend import MayResend, OnUnknownChoice
from regard.store.records import DeliveryRecord
from regard.validation import StrictModel

DEFAULT_PORTS = {"starttls": 587, "implicit": 465, "none": 25}
BOUNCE_CODES = frozenset({550, 551, 553})  # mailbox unavailable / not local / name not allowed
# headers the adapter writes itself: a delivery's own headers never replace them
OWN_HEADERS = frozenset(
    {"from", "to", "cc", "bcc", "subject", "date", "message-id", "reply-to", "sender"}
    | {"mime-version", "content-type", "content-transfer-encoding"}
)


class SmtpOptions(StrictModel):
    host: str
    port: int | None = Field(default=None, ge=1, le=65535)  # default: by `tls`
    tls: Literal["starttls", "implicit", "none"] = "starttls"
    username: str | None = None
    password: SecretStr | None = None
    from_: str | None = Field(default=None, alias="from")  # default: [sender] name and email
    ca_file: str | None = None  # a CA (or self-signed certificate) to trust, PEM
    helo: str | None = None  # the name to greet with (default: this machine's name)
    max_connections: int | None = Field(default=None, ge=1)  # default: [delivery] concurrency
    on_unknown: OnUnknownChoice = "unconfirmed"

    @model_validator(mode="after")
    def _safe(self) -> SmtpOptions:
        if self.tls == "none" and not is_loopback(self.host):
            raise ValueError(
                f'tls = "none" sends the password and the mail in clear: only to a loopback '
                f'host, not {self.host!r}; use "starttls" (port 587) or "implicit" (465)'
            )
        if (self.username is None) != (self.password is None):
            raise ValueError("set both `username` and `password`, or neither")
        return self


class SmtpProvider(MayResend):
    """E-mail through an SMTP server; the message id is the mail's own ``Message-ID``."""

    type = "smtp"
    channels = frozenset({"email"})
    Options = SmtpOptions
    on_unknown = OnUnknown.NEITHER

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        options: SmtpOptions = self.options
        sender = self.config.sender
        if options.from_:
            name, address = email.utils.parseaddr(options.from_)
        else:
            name, address = sender.name, sender.email
        if not address or "@" not in address:
            raise ProviderError("no sender address: set `from` here or `email` in [sender]")
        try:
            self.sender = Address(display_name=name, addr_spec=address)
        except (ValueError, IndexError) as exc:
            raise ProviderError(f"sender address {address!r}: {exc}") from None
        self.reply_to = str(getattr(sender, "reply_to", "") or "")
        self.from_header = email.utils.formataddr((name, address), charset="utf-8")
        self.domain = self.sender.domain.encode("idna").decode("ascii")
        self.ca_file: Path | None = None
        if options.ca_file:
            self.ca_file = self.config.resolve(options.ca_file)
            if not self.ca_file.is_file():
                raise ProviderError(f"ca_file {str(self.ca_file)!r}: no such file")
        self.port = options.port or DEFAULT_PORTS[options.tls]
        self.timeout = self.config.delivery.timeout.total_seconds()
        self.size = options.max_connections or self.config.delivery.concurrency
        self._pool: _Pool | None = None

    # -- the attempt ------------------------------------------------------------------
    async def send(self, record: DeliveryRecord, client: httpx.AsyncClient) -> Outcome:
        to = record.get("to")
        if not isinstance(to, str) or "@" not in to:
            return Dead(f"{to!r} is not an e-mail address")
        utf8 = not to.isascii() or not self.sender.addr_spec.isascii()
        try:
            payload = self.message_bytes(record, utf8)
        except (ValueError, TypeError, IndexError) as exc:
            return Dead(f"cannot build the message: {exc}")
        mid = message_id(str(record["delivery_id"]), self.domain)
        outcome = await self._deliver(to, payload, utf8, mid)
        return self.scrub(outcome)

    def message_bytes(self, record: DeliveryRecord, utf8: bool = False) -> bytes:
        """The message as it goes on the wire (CRLF line ends), the same MIME structure as
        :meth:`message`. With ASCII addresses it is written directly: each header once
        (RFC 2047 encoded-words from ``email.header`` for a value that is not ASCII),
        the parts quoted-printable by ``binascii`` — the ``email`` generator re-folds every
        header through pure-Python code, ~4 ms a message, which bounded a dispatch. An
        address that is not ASCII needs SMTPUTF8, which :meth:`message` writes."""
        if utf8:
            return self.message(record).as_bytes(policy=SMTPUTF8)
        delivery_id = str(record["delivery_id"])
        lines = [
            "From: " + self.from_header,
            "To: " + str(record["to"]),
            *(["Reply-To: " + self.reply_to] if self.reply_to else []),
            _header_line("Subject", record.get("subject") or ""),
            "Date: " + email.utils.formatdate(usegmt=True),
            "Message-ID: " + message_id(delivery_id, self.domain),
            *(_header_line(name, value) for name, value in self.extra_headers(record)),
            "MIME-Version: 1.0",
        ]
        text = _qp_part("plain", record.get("text") or "")
        if not record.get("html"):
            return ("\r\n".join(lines) + "\r\n").encode("ascii") + text
        # "=_" never occurs in quoted-printable text ("=" is written =3D): a safe boundary
        boundary = f"=_regard_{delivery_id}"
        lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")
        sep = f"--{boundary}\r\n".encode("ascii")
        html = _qp_part("html", record["html"] or "")
        return head + sep + text + b"\r\n" + sep + html + f"\r\n--{boundary}--\r\n".encode()

    def message(self, record: DeliveryRecord) -> EmailMessage:
        """The MIME message of ``record`` (the modern API): text and HTML as
        ``multipart/alternative``."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = str(record["to"])
        if self.reply_to:
            message["Reply-To"] = self.reply_to
        message["Subject"] = record.get("subject") or ""
        message["Date"] = email.utils.formatdate(usegmt=True)
        message["Message-ID"] = message_id(str(record["delivery_id"]), self.domain)
        for name, value in self.extra_headers(record):
            message[name] = value
        message.set_content(record.get("text") or "", cte="quoted-printable")
        if record.get("html"):
            message.add_alternative(record["html"], subtype="html", cte="quoted-printable")
        return message

    def extra_headers(self, record: DeliveryRecord) -> list[tuple[str, str]]:
        """The delivery's own headers (List-Unsubscribe…), never one the adapter writes."""
        headers = cast(Mapping[str, Any], record).get("headers") or {}
        out = []
        for name, value in dict(headers).items():
            if str(name).lower() not in OWN_HEADERS and value is not None:
                if any(c in str(name) + str(value) for c in "\r\n"):
                    raise ValueError(f"header {name!r} holds a line break")
                out.append((str(name), str(value)))
        return out

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    # -- the connection ---------------------------------------------------------------
    def pool(self) -> _Pool:
        """This event loop's connections (a pool belongs to the loop that opened it)."""
        loop = asyncio.get_running_loop()
        if self._pool is None or self._pool.loop is not loop:
            self._pool = _Pool(loop, self.size)
        return self._pool

    async def _deliver(self, to: str, payload: bytes, utf8: bool, mid: str) -> Outcome:
        pool = self.pool()
        async with pool.slots:
            smtp = pool.take()
            reused = smtp is not None
            for _ in range(2):
                if smtp is None:
                    connected = await self._connect()
                    if not isinstance(connected, aiosmtplib.SMTP):
                        return connected
                    smtp = connected
                try:
                    outcome, keep = await self._transaction(smtp, to, payload, utf8, mid)
                except BaseException:  # cancelled, or a bug: never leave a socket behind
                    await _drop(smtp)
                    raise
                if keep:
                    pool.give(smtp)
                else:
                    await _drop(smtp)
                if reused and isinstance(outcome, _Stale):
                    smtp, reused = None, False  # the server closed an idle connection
                    continue
                break
        return outcome.retry if isinstance(outcome, _Stale) else outcome

    async def _connect(self) -> aiosmtplib.SMTP | Outcome:
        options: SmtpOptions = self.options
        smtp = aiosmtplib.SMTP(
            hostname=options.host,
            port=self.port,
            use_tls=options.tls == "implicit",
            start_tls=options.tls == "starttls",
            tls_context=None if options.tls == "none" else tls_context(self.ca_file),
            username=options.username,
            password=options.password.get_secret_value() if options.password else None,
            local_hostname=options.helo,
            timeout=self.timeout,
        )
        where = f"{options.host}:{self.port}"
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            await _drop(smtp)
            if 400 <= exc.code < 500:
                return Retry(f"SMTP {exc.code} to AUTH at {where}: {exc.message}")
            return Paused(
                f"SMTP {exc.code}: {where} refuses the login {options.username!r}: "
                f"{exc.message}; check username and password"
            )
        except aiosmtplib.SMTPResponseException as exc:
            await _drop(smtp)
            if exc.code < 500:
                return Retry(f"SMTP {exc.code} from {where}: {exc.message}")
            return Paused(f"SMTP {exc.code}: {where} refuses the connection: {exc.message}")
        except aiosmtplib.SMTPNotSupported as exc:
            await _drop(smtp)
            return Paused(f"{where}: {exc}; check `tls` and `port`")
        except (aiosmtplib.SMTPException, OSError) as exc:
            await _drop(smtp)
            if _untrusted(exc):
                return Paused(
                    f"{where}: its TLS certificate is not trusted ({_cause(exc)}); "
                    "name its CA in `ca_file` if it is your own"
                )
            return Retry(f"cannot connect to {where}: {_cause(exc)}")
        return smtp

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, to: str, payload: bytes, utf8: bool, mid: str
    ) -> tuple[Outcome | _Stale, bool]:
        """One mail on an open connection: the outcome, and whether the connection can
        serve the next one."""
        stage = "MAIL FROM"
        try:
            mail_options = ["SMTPUTF8"] if utf8 else []
            await smtp.mail(
                self.sender.addr_spec, options=mail_options, encoding="utf-8", timeout=self.timeout
            )
            stage = "RCPT TO"
            await smtp.rcpt(to, encoding="utf-8", timeout=self.timeout)
            stage = "DATA"
            reply = await smtp.execute_command(b"DATA", timeout=self.timeout)
            if reply.code != 354:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
            stage = "the message"
            protocol = smtp.protocol
            if protocol is None:
                raise aiosmtplib.SMTPServerDisconnected("connection lost")
            # one write: the end of data in a segment of its own would wait for the
            # server's delayed ACK (Nagle), ~40 ms a mail
            body = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(payload))
            protocol.write(body + b".\r\n")
            stage = "the end of the message"  # from here on the server may have taken it
            reply = await protocol.read_response(timeout=self.timeout)
            if reply.code != 250:
                raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        except aiosmtplib.SMTPResponseException as exc:
            outcome = self._refused(stage, exc.code, exc.message, to)
            keep = exc.code != 421 and await _reset(smtp, self.timeout)
            return outcome, keep
        except (aiosmtplib.SMTPException, OSError) as exc:
            reason = f"{_cause(exc)} after {stage}"
            if stage == "the end of the message":
                return Unknown(f"no reply to the message: {reason}"), False
            retry = Retry(f"connection lost: {reason} (not sent)")
            return (_Stale(retry) if stage == "MAIL FROM" else retry), False
        return Sent(mid), True

    def _refused(self, stage: str, code: int, message: str, to: str) -> Outcome:
        reason = f"SMTP {code} to {stage}: {message}"
        if code < 500:
            return Retry(reason)
        if stage == "MAIL FROM" or code in (530, 535):
            return Paused(
                f"{reason}; the server refuses the sender {self.sender.addr_spec!r} "
                "(check `from`, [sender] email and the account's login)"
            )
        if stage == "RCPT TO" and code in BOUNCE_CODES and _address_status(message):
            return Dead(reason, unsubscribe=to)
        return Dead(reason)


class _Stale:
    """A reused connection that failed before the mail began: open a new one and try
    again within the same attempt (servers close idle connections)."""

    def __init__(self, retry: Retry) -> None:
        self.retry = retry


class _Pool:
    """At most ``size`` connections of one event loop; idle ones wait for the next send."""

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self.loop = loop
        self.slots = asyncio.Semaphore(size)
        self.idle: list[aiosmtplib.SMTP] = []

    def take(self) -> aiosmtplib.SMTP | None:
        while self.idle:
            smtp = self.idle.pop()
            if smtp.is_connected:
                return smtp
            smtp.close()
        return None

    def give(self, smtp: aiosmtplib.SMTP) -> None:
        self.idle.append(smtp)

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        for smtp in idle:
            try:
                await smtp.quit(timeout=2)
            except (aiosmtplib.SMTPException, OSError):
                smtp.close()


_UTF8_B = Charset("utf-8")
_UTF8_B.header_encoding = BASE64  # base64 is C; the Q encoder walks each character in Python
MAX_HEADER = 900  # longer ASCII values are folded (RFC 5322: lines of at most 998)


def _header_line(name: str, value: str) -> str:
    """``Name: value``, the value encoded per RFC 2047 when it is not ASCII (or folded
    when it is very long)."""
    if value.isascii() and len(value) < MAX_HEADER:
        return f"{name}: {value}"
    charset = _UTF8_B if not value.isascii() else None
    return f"{name}: " + Header(value, charset, header_name=name).encode(linesep="\r\n")


def _qp_part(subtype: str, text: str) -> bytes:
    """One ``text/<subtype>`` part: its headers, a blank line, the UTF-8 text
    quoted-printable (RFC 2045), lines ending in CRLF."""
    body = binascii.b2a_qp(text.replace("\r\n", "\n").encode("utf-8"), istext=True)
    body = body.replace(b"\n", b"\r\n")
    return (
        (
            f'Content-Type: text/{subtype}; charset="utf-8"\r\n'
            "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        ).encode("ascii")
        + body
        + (b"" if body.endswith(b"\r\n") else b"\r\n")
    )


def message_id(delivery_id: str, domain: str) -> str:
    """``<delivery id@sender's domain>``: one id per delivery, whatever the attempt."""
    return f"<{delivery_id}@{domain}>"


@functools.cache
def tls_context(ca_file: Path | None) -> ssl.SSLContext:
    """The system's trusted CAs, or only ``ca_file`` when one is named (a server of the
    shop's own with a self-signed certificate)."""
    if ca_file is None:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(ca_file))


def _address_status(message: str) -> bool:
    """No enhanced status code (RFC 3463) in the reply, or one about the address or the
    mailbox (5.1.x bad address, 5.2.1 mailbox disabled) rather than policy or content."""
    first = message.split(maxsplit=1)[0] if message.strip() else ""
    parts = first.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return True
    return parts[1] == "1" or (parts[1] == "2" and parts[2] == "1")


async def _reset(smtp: aiosmtplib.SMTP, timeout: float) -> bool:
    """RSET after a refused mail, so the connection can serve the next; False if not."""
    try:
        return (await smtp.rset(timeout=timeout)).code == 250
    except (aiosmtplib.SMTPException, OSError):
        return False


async def _drop(smtp: aiosmtplib.SMTP) -> None:
    smtp.close()


def _untrusted(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _cause(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
