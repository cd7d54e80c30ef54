"""`digest serve` as a real process on a free 127.0.0.1 port: subscribe, confirm, one-click unsubscribe over HTTP,
and access logs that never contain a working token."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from .audience_support import confirm_links, path_of
from .conftest import Project
from .send_support import free_port


@pytest.fixture
def server(project: Project, tmp_path: Path) -> Iterator[tuple[Project, str, Path]]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    project.write_config(f'outbox_dir = "outbox"\nbase_url = "{base}"\n')
    project.run("lists", "create", "daily")
    log = tmp_path / "serve.log"
    env = {**os.environ, **project.env}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "digest", "serve", "--port", str(port)], cwd=project.root,
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("digest serve did not start:\n" + log.read_text(errors="replace"))
            time.sleep(0.1)
        yield project, base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_serve_subscribe_confirm_and_one_click_unsubscribe(server: tuple[Project, str, Path]) -> None:
    project, base, log = server
    with httpx.Client(base_url=base) as browser:
        form = browser.get("/subscribe")
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        assert form.status_code == 200 and token
        sent = browser.post("/subscribe", data={"csrf_token": token.group(1), "email": "live@example.org"})
        assert sent.status_code == 200 and "Check your inbox" in sent.text
    (_, link), = confirm_links(project.root)
    assert link.startswith(base + "/confirm/")
    assert httpx.post(link).status_code == 200
    assert project.json("subscribers", "show", "live@example.org")["status"] == "active"

    sub = project.json("subscribers", "show", "live@example.org")
    from digest.audience.tokens import unsubscribe_url

    app = project.app()
    url = unsubscribe_url(app.settings, sub["id"], project.json("lists", "show", "daily")["id"], sub["email"])
    app.close()
    assert httpx.get(url).status_code == 200
    assert project.json("subscribers", "show", "live@example.org")["status"] == "active"
    answer = httpx.post(url, content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 200
    assert project.json("subscribers", "show", "live@example.org")["status"] == "unsubscribed"

    time.sleep(0.2)  # let the access log line reach the file
    text = log.read_text(errors="replace")
    assert "POST /unsubscribe/" in text
    assert path_of(url).rsplit("/", 1)[1] not in text and path_of(link).rsplit("/", 1)[1] not in text


def test_serve_refuses_to_start_without_secret_key(project: Project) -> None:
    result = project.run("serve", "--port", str(free_port()), ok=False, env={"DIGEST_SECRET_KEY": ""})
    assert result.exit_code == 2
    assert "secret_key is not set" in result.stderr


def test_serve_warns_when_base_url_points_at_another_local_port(project: Project, tmp_path: Path) -> None:
    """`digest serve --port P` with the default base_url (port 8040) would mail links nobody answers: it says so."""
    port = free_port()
    project.write_config('base_url = "http://127.0.0.1:8040"\n')
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "digest", "serve", "--port", str(port)], cwd=project.root,
                                env={**os.environ, **project.env}, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while "Ctrl+C" not in log.read_text(errors="replace"):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        text = log.read_text(errors="replace")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert f"Listening on http://127.0.0.1:{port}" in text
    assert "links in emails point at http://127.0.0.1:8040" in text
    assert f"Warning: base_url http://127.0.0.1:8040 is on this machine but on port 8040, not {port}" in text


def test_serve_publishes_the_archive_its_web_versions_and_feed(server: tuple[Project, str, Path]) -> None:
    import feedparser

    from .send_support import DAY, add_articles, add_subscribers
    from .send_support import send_on_day as send

    project, base, _ = server
    app = project.app()
    try:
        add_articles(app, 3)
        add_subscribers(app, 2, list_name="daily")
        project.run("editions", "note", "--list", "daily", "--date", DAY.isoformat(), "Hello from the desk.")
        assert send(app, list_name="daily").sent == 2
    finally:
        app.close()
    page = httpx.get(f"{base}/archive/daily")
    assert page.status_code == 200 and f'href="/archive/daily/{DAY.isoformat()}"' in page.text
    web = httpx.get(f"{base}/archive/daily/{DAY.isoformat()}")
    assert web.status_code == 200 and "Hello from the desk." in web.text
    assert "/unsubscribe/" not in web.text and "/preferences/" not in web.text
    feed = feedparser.parse(httpx.get(f"{base}/archive/daily/feed.xml").content)
    assert feed.bozo == 0 and [e.link for e in feed.entries] == [f"{base}/archive/daily/{DAY.isoformat()}"]
    project.run("lists", "set", "daily", "--archive", "private")
    assert httpx.get(f"{base}/archive/daily").status_code == 404
