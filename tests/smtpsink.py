"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps every mail it accepts and
answers some recipients as a real server would refuse them:

- ``unknown@…``: ``550 5.1.1`` to RCPT TO (the mailbox does not exist);
- ``busy@…``: ``421 4.3.2`` after the message (try again later);
- ``drop@…``: takes the whole message, then drops the connection without a reply.

With ``tls`` (an ``ssl.SSLContext`` of the server), it offers STARTTLS and requires it;
with ``implicit_tls`` it speaks TLS from the first byte; with ``login`` it requires AUTH.
"""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Mail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    delivered: bool  # False: the server took it but dropped the connection before replying

    def parsed(self) -> EmailMessage:
        return message_from_bytes(self.data, _class=EmailMessage, policy=policy.default)  # type: ignore[no-any-return]


@dataclass
class _Handler:
    mails: list[Mail] = field(default_factory=list)
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.connections += 1
        return responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address.startswith("unknown@"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        to = envelope.rcpt_tos[0]
        data = bytes(envelope.original_content or envelope.content)
        if to.startswith("busy@"):
            return "421 4.3.2 Service shutting down, try again later"
        dropped = to.startswith("drop@")
        with self.lock:
            self.mails.append(Mail(envelope.mail_from, list(envelope.rcpt_tos), data, not dropped))
        if dropped:
            server.transport.abort()
        return "250 2.0.0 Ok: queued"


class SmtpSink:
    def __init__(
        self,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
        smtputf8: bool = False,
    ) -> None:
        self.handler = _Handler()
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if tls is not None:
            kwargs.update(tls_context=tls, require_starttls=True)
        if implicit_tls is not None:
            kwargs.update(ssl_context=implicit_tls)
        if login is not None:
            kwargs.update(authenticator=_Authenticator(login), auth_required=True)
            kwargs.update(auth_require_tls=tls is not None)
        if smtputf8:
            kwargs.update(enable_SMTPUTF8=True)
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="localhost",
            **kwargs,
        )  # fmt: skip

    def start(self) -> SmtpSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    @property
    def mails(self) -> list[Mail]:
        with self.handler.lock:
            return list(self.handler.mails)

    @property
    def connections(self) -> int:
        return self.handler.connections


class _Authenticator:
    def __init__(self, login: tuple[str, str]) -> None:
        self.login = login

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == self.login
        )
        return AuthResult(success=ok, handled=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (openssl)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context
