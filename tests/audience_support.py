"""Helpers for the web tests: the confirmation emails in the outbox, a sync face over httpx's ASGI client, and a
real uvicorn server on loopback."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import uvicorn

BASE = "http://127.0.0.1:8040"
CONFIRM_LINK = re.compile(r"https?://[^\s\"'<>]+/confirm/[A-Za-z0-9_.\-]+")


def outbox_messages(root: Path) -> list[EmailMessage]:
    """Every message the file backend wrote under the project's outbox, oldest first."""
    paths = sorted((root / "outbox").rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns)
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
            for p in paths]


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def confirm_links(root: Path) -> list[tuple[str, str]]:
    """(recipient, confirmation link) of every confirmation email in the outbox."""
    out = []
    for message in outbox_messages(root):
        match = CONFIRM_LINK.search(text_of(message))
        if match:
            out.append((str(message["To"]), match.group(0)))
    return out


def path_of(url: str) -> str:
    return "/" + url.split("/", 3)[3]


class Web:
    """Drives the ASGI app in-process through httpx, from synchronous tests; keeps cookies like a browser."""

    def __init__(self, asgi: Any, client_ip: str = "127.0.0.1") -> None:
        self.asgi = asgi
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi, client=(client_ip, 40000)),
                                        base_url=BASE, follow_redirects=False)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.loop.run_until_complete(self.client.request(method, url, **kwargs))

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def csrf_token(self, path: str = "/subscribe") -> str:
        page = self.get(path)
        assert page.status_code == 200, page.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert match, "the subscribe form has no csrf_token field"
        return match.group(1)

    def subscribe_form(self, email_: str, path: str = "/subscribe", **fields: Any) -> httpx.Response:
        data = {"csrf_token": self.csrf_token(path), "email": email_, **fields}
        return self.post(path, data=data)

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def loopback_socket() -> socket.socket:
    """A socket bound to a free 127.0.0.1 port, so the URL is known before the app that needs it is built."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@contextmanager
def serve_on_loopback(asgi: Any, sock: socket.socket) -> Iterator[str]:
    """Run ``asgi`` under uvicorn in a thread on ``sock`` (closed afterwards); yields its base URL once it is up."""
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert server.started
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
