"""Helpers for the send tests: a newsroom with fictional articles and subscribers, a stand-in, an SMTP sink."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Self

from aiosmtpd.controller import Controller
from sqlalchemy import select

from digest.app import App
from digest.audience.lifecycle import email_key
from digest.audience.lists import ensure_list
from digest.models import Article, Section
from digest.send.dispatch import send_edition
from digest.store.articles import upsert_article
from digest.store.tables import DeliveryRow, MailingListRow, SubscriberRow

DAY = date(2024, 5, 6)
# A past day (so a subprocess running on the real clock sees the same complete window); the default list
# sends at 07:00 UTC, and "now" is just after.
NOW = datetime(2024, 5, 6, 7, 5, tzinfo=UTC)


def add_articles(app: App, n: int = 5, *, before: datetime = NOW, prefix: str = "art",
                 first: timedelta = timedelta(hours=2), step: timedelta = timedelta(hours=1),
                 topics: list[list[str]] | None = None) -> list[str]:
    """Fictional articles ``{prefix}000``, ``{prefix}001``…, published ``first``, ``first + step``… before ``before``
    (by default, DAY's cut-off)."""
    ids = []
    with app.store.session() as s:
        for i in range(n):
            art = Article(
                id=f"{prefix}{i:03d}", title=f"Fictional story number {i} about the town council",
                outlet="The Example Gazette", url=f"https://news.example.org/{prefix}-{i}",
                published_at=before - first - step * i, topics=(topics[i] if topics else ["local"]),
                # Words of its own (the prefix's and the number's) make each article another story than the rest
                # of its call and than another call's (another day's), which the duplicate check and an
                # edition's story memory would otherwise group or leave out as retellings.
                summary=f"A made-up summary of story {i}, filed by the {prefix} desk: "
                        + " ".join(f"{prefix}{i}note{k}" for k in range(8)) + ".",
                quick_looks=[f"Point one of story {i}.", f"Point two of story {i}."],
                sections=[Section(None, [f"Body paragraph of story {i}. " * 8])],
            )
            upsert_article(s, art, now=before)
            ids.append(art.id)
    return ids


def add_subscribers(app: App, n: int, *, list_name: str | None = None, status: str = "active",
                    start: int = 0, topics: list[str] | None = None, domain: str = "example.com") -> list[int]:
    ids = []
    with app.store.session() as s:
        list_row = ensure_list(s, app.settings, list_name)
        for i in range(start, start + n):
            email = f"reader{i}@{domain}"
            row = SubscriberRow(list_id=list_row.id, email=email, email_key=email_key(email),
                                name=f"Reader {i}", status=status, topics=topics or [],
                                active_since=NOW - timedelta(days=3))
            s.add(row)
            s.flush()
            ids.append(row.id)
    return ids


def delivery_statuses(app: App) -> Counter[str]:
    with app.store.session() as s:
        return Counter(s.scalars(select(DeliveryRow.status)))


def list_row(app: App) -> MailingListRow:
    with app.store.session() as s:
        return ensure_list(s, app.settings)


@dataclass
class SmtpSink:
    """aiosmtpd on loopback keeping every message; ``hang_on`` makes the n-th DATA never answer (after storing)."""

    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    rcpts: list[str] = field(default_factory=list)
    hang_on: int | None = None
    fail_next: list[int] = field(default_factory=list)  # SMTP codes to answer the next DATAs with
    _count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.fail_next:
                code = self.fail_next.pop(0)
                return f"{code} scripted failure"
            self._count += 1
            n = self._count
            msg = message_from_bytes(envelope.content, policy=policy.default)
            self.messages.append(msg)  # type: ignore[arg-type]
            self.raw.append(envelope.original_content or envelope.content)
            self.rcpts.extend(envelope.rcpt_tos)
        if self.hang_on is not None and n == self.hang_on:
            await asyncio.sleep(3600)
        return "250 OK queued"

    def count_by_rcpt(self) -> Counter[str]:
        with self._lock:
            return Counter(r.lower() for r in self.rcpts)


def free_port() -> int:
    # aiosmtpd connects to its own port to check it started, so it needs a real one, not 0.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class SmtpServer:
    def __init__(self, sink: SmtpSink | None = None, **smtp_options: Any) -> None:
        self.sink = sink or SmtpSink()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=free_port(), **smtp_options)

    def __enter__(self) -> Self:
        self.controller.start()
        return self

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def __exit__(self, *exc: object) -> None:
        self.controller.stop(no_assert=True)


def wait_for(predicate: Any, timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def spawn_digest(project: Any, *args: str, stderr: int = subprocess.PIPE,
                 env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`digest ARGS` as a process of its own in the project (its folder and environment), the way an operator
    runs it; in a new session, so `os.killpg` kills it and the workers it started together."""
    return subprocess.Popen([sys.executable, "-m", "digest", *args], cwd=project.root,
                            env={**os.environ, **project.env, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=stderr, start_new_session=True)


_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_at_terminal(project: Any, *args: str, timeout: float = 120.0) -> tuple[int, str, str]:
    """`digest ARGS` with its stderr on a pseudo-terminal, 200 columns wide: what decides on a progress bar sees
    a person watching. Returns (exit status, stdout, what the terminal got, without escape codes)."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    proc = spawn_digest(project, *args, stderr=slave, env={"TERM": "xterm", "COLUMNS": "200"})
    os.close(slave)
    chunks: list[bytes] = []

    def drain() -> None:
        # Read as it comes: a terminal whose buffer fills blocks the writer.
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO once the last writer has closed the terminal
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        reader.join(timeout=10)
        os.close(master)
    # A bar redraws its line after a carriage return: each drawing on a line of its own.
    terminal = _ESCAPES.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r", "\n")
    return proc.returncode, out.decode("utf-8", "replace"), terminal


def sendgrid_env(project: Any, standin: Any, monkeypatch: Any, **settings: Any) -> App:
    """Point a test project at the stand-in (and set the API key the stand-in expects)."""
    monkeypatch.setenv("SENDGRID_API_KEY", standin.state.api_key)
    project.env.update({"DIGEST_BACKEND": "sendgrid", "DIGEST_SENDGRID_HOST": standin.url,
                        "DIGEST_SENDGRID_SEND_AT_DELAY": "0", "DIGEST_SEND_BACKOFF_SECONDS": "0.01",
                        "SENDGRID_API_KEY": standin.state.api_key})
    project.env.update({f"DIGEST_{k.upper()}": str(v) for k, v in settings.items()})
    app: App = project.app()
    return app


def send_on_day(app: App, **kw: Any) -> Any:
    """``send_edition`` for DAY's edition at NOW, without a progress bar, unless the test says otherwise."""
    kw.setdefault("date", DAY)
    kw.setdefault("now", NOW)
    kw.setdefault("progress", False)
    return send_edition(app, **kw)


def use_dkim_smtp(project: Any, smtp_port: int, selector: str = "sel1", **env: str) -> bytes:
    """Point the project at the SMTP sink with a fresh RSA DKIM key (dkim.pem); the DNS TXT record to verify with."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (project.root / "dkim.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()))
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    project.env.update({"DIGEST_BACKEND": "smtp", "DIGEST_SMTP_PORT": str(smtp_port),
                        "DIGEST_DKIM_PRIVATE_KEY_FILE": "dkim.pem", "DIGEST_DKIM_SELECTOR": selector, **env})
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
