"""Helpers for the deliverability tests: subscribers at given addresses, and Prism serving SendGrid's own spec."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from digest.app import App
from digest.audience.lifecycle import email_key
from digest.audience.lists import ensure_list
from digest.store.tables import SubscriberRow

from .conftest import REPO, SHARED, require
from .send_support import NOW, free_port, wait_for

SPEC = SHARED / "sendgrid" / "tsg_mail_v3.json"


def add_addresses(app: App, *emails: str) -> dict[str, int]:
    """Active subscribers at these (already normalized) addresses, written as the store keeps them."""
    ids = {}
    with app.store.session() as s:
        list_row = ensure_list(s, app.settings)
        for i, email in enumerate(emails):
            row = SubscriberRow(list_id=list_row.id, email=email, email_key=email_key(email), name=f"Reader {i}",
                                status="active", topics=[], active_since=NOW.replace(day=1))
            s.add(row)
            s.flush()
            ids[email] = row.id
    return ids


class PrismRun:
    url: str
    violations: list[str]
    bodies: list[dict[str, Any]]


@contextmanager
def prism(monkeypatch: Any) -> Iterator[PrismRun]:
    """Stoplight Prism mocking SendGrid's official OpenAPI description (`--errors`: a request that breaks the spec
    is answered with an error), with every violation header and mail/send body recorded."""
    require(SPEC.is_file(), "../shared/sendgrid/tsg_mail_v3.json (SendGrid's OpenAPI description)")
    binary = REPO / "node_modules" / ".bin" / "prism"
    require(binary.exists() and shutil.which("node") is not None, "Stoplight Prism (npm ci)")
    port = free_port()
    proc = subprocess.Popen([str(binary), "mock", str(SPEC), "-p", str(port), "-h", "127.0.0.1", "--errors"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    run = PrismRun()
    run.url, run.violations, run.bodies = f"http://127.0.0.1:{port}", [], []
    try:
        def up() -> bool:
            try:
                urllib.request.urlopen(f"{run.url}/v3/mail/send", timeout=1)
            except urllib.error.HTTPError:
                return True
            except OSError:
                return False
            return True

        wait_for(up, timeout=60, what="prism")
        from python_http_client import client as http_client
        from python_http_client.exceptions import HTTPError

        original = http_client.Client._make_request

        def spy(self: Any, opener: Any, request: Any, timeout: Any = None) -> Any:
            if request.data and request.full_url.endswith("/v3/mail/send"):
                run.bodies.append(json.loads(request.data))
            try:
                response = original(self, opener, request, timeout=timeout)
            except HTTPError as exc:
                found = exc.headers.get("sl-violations") if exc.headers else None
                if found:
                    run.violations.append(found)
                raise
            if response.headers.get("sl-violations"):
                run.violations.append(response.headers["sl-violations"])
            return response

        monkeypatch.setattr(http_client.Client, "_make_request", spy)
        real_urlopen = urllib.request.urlopen

        def spy_urlopen(request: Any, *args: Any, **kwargs: Any) -> Any:
            # Mail Send bodies encoded ahead (sendgrid_body) go out through urllib, not python_http_client.
            mail_send = isinstance(request, urllib.request.Request) and request.full_url.endswith("/v3/mail/send")
            if mail_send and isinstance(request.data, bytes):
                run.bodies.append(json.loads(request.data))
            try:
                response = real_urlopen(request, *args, **kwargs)
            except urllib.error.HTTPError as exc:
                found = exc.headers.get("sl-violations") if mail_send and exc.headers else None
                if found:
                    run.violations.append(found)
                raise
            if mail_send and response.headers.get("sl-violations"):
                run.violations.append(response.headers["sl-violations"])
            return response

        monkeypatch.setattr(urllib.request, "urlopen", spy_urlopen)
        yield run
    finally:
        os.killpg(proc.pid, 9)
        proc.wait(timeout=10)
