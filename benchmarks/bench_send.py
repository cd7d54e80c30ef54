"""Sending benchmarks.

1. ``smtp_mime_build``: personalized multipart/alternative messages of about 60 KB per second, built from a
   variant encoded once (render's ``prepare_message``), against the naive way: an ``EmailMessage`` per reader
   (set_content + add_alternative + bytes), timed on a sample.
2. ``send_*``: one edition sent to N = 100,000 subscribers through the SendGrid stand-in (in its own process):
   mail/send requests made (must be ⌈N / 1,000⌉ for one variant; the naive baseline is one request per reader),
   wall and CPU time at N, and the Python-heap peak of the send at N/10 against N/50 (flat: rows are streamed).
3. ``send_workers``: the same send on PostgreSQL (a database of its own on DIGEST_TEST_POSTGRES_URL's server)
   by one process, then by two (`digest send --workers 2`), side by side: the ratio is what a second worker
   buys on this machine, where the stand-in and PostgreSQL share its cores with the workers.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from benchmarks.harness import BenchResult, cpu_seconds, peak_memory, scaled, timed

API_KEY = "SG.bench-key"
NOW = datetime(2024, 5, 6, 7, 5, tzinfo=UTC)
PARAGRAPH = ("<tr><td style=\"padding:8px 24px;color:#1a1a1a;font-family:Georgia,serif\">"
             "Fictional council news: the harbour budget passed after a long night — naïve café owners "
             "cheered. <a href=\"https://news.example.org/story?utm_source=digest\">Read more</a></td></tr>\n")


def _variant() -> tuple[object, object, list[object]]:
    from digest.render.edition import RenderedEdition
    from digest.render.personalize import TOKENS, Recipient
    from digest.store.tables import MailingListRow

    html = ("<html><body><table>" + f"<tr><td>Hello {TOKENS['html']['name']},</td></tr>\n"
            + PARAGRAPH * 230
            + f"<tr><td><a href=\"{TOKENS['html']['unsubscribe_url']}\">Unsubscribe</a> · "
              f"<a href=\"{TOKENS['html']['preferences_url']}\">Preferences</a></td></tr></table></body></html>")
    text = (f"Hello {TOKENS['text']['name']},\n\n" + "Fictional council news: the budget passed.\n" * 120
            + f"Unsubscribe: {TOKENS['text']['unsubscribe_url']}\n")
    rendered = RenderedEdition(subject="The Daily Digest · Tue 6 May: Harbour budget passes", preheader="",
                               mjml="", html=html, text=text, trimmed=[], article_count=8,
                               size_bytes=len(html.encode()), key="bench")
    list_row = MailingListRow(id=1, name="daily", title=None, from_email="newsletter@example.org",
                              from_name="The Daily Digest", reply_to=None)
    readers = [Recipient(email=f"reader{i}@example.com", name=f"Reader {i}", subscriber_id=i,
                         unsubscribe_url=f"http://127.0.0.1:8040/unsubscribe/{'x' * 100}{i}",
                         preferences_url=f"http://127.0.0.1:8040/preferences/{'y' * 100}{i}")
               for i in range(1000)]
    return rendered, list_row, readers


def bench_mime() -> BenchResult:
    from digest.config import load_settings
    from digest.render.message import prepare_message
    from digest.render.personalize import personalize

    settings = load_settings(cwd=Path(tempfile.mkdtemp()), environ={})
    rendered, list_row, readers = _variant()
    n = scaled(100_000)
    sample = min(n, scaled(2_000))

    def ours() -> int:
        prepared = prepare_message(settings, list_row, rendered)  # type: ignore[arg-type]
        size = 0
        for i in range(n):
            size = len(prepared.render(readers[i % len(readers)]))  # type: ignore[arg-type]
        return size

    def naive() -> int:
        size = 0
        for i in range(sample):
            reader = readers[i % len(readers)]
            subject, html, text = personalize(rendered, reader)  # type: ignore[arg-type]
            msg = EmailMessage()
            msg["From"] = "The Daily Digest <newsletter@example.org>"
            msg["To"] = f"{reader.name} <{reader.email}>"  # type: ignore[attr-defined]
            msg["Subject"] = subject
            msg["List-Unsubscribe"] = f"<{reader.unsubscribe_url}>"  # type: ignore[attr-defined]
            msg.set_content(text)
            msg.add_alternative(html, subtype="html")
            size = len(bytes(msg))
        return size

    size, t_ours = timed(ours)
    _, t_naive = timed(naive)
    rate, base = n / t_ours, sample / t_naive
    return BenchResult("smtp_mime_build", rate, "msg/s", base, rate / base, n,
                       {"message_bytes": size, "baseline_sample": sample})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _project(root: Path, n: int, port: int, database_url: str) -> Any:
    """A newsroom with a few fictional articles and ``n`` active subscribers, bulk-inserted."""
    from sqlalchemy import insert

    from digest.app import App
    from digest.audience.lists import ensure_list
    from digest.models import Article
    from digest.store.articles import upsert_article
    from digest.store.tables import SubscriberRow

    root.mkdir(parents=True, exist_ok=True)
    (root / "digest.toml").write_text(
        f'database_url = "{database_url}"\nsecret_key = "bench-secret"\nbackend = "sendgrid"\n'
        f'sendgrid_host = "http://127.0.0.1:{port}"\nsendgrid_send_at_delay = 0\n', encoding="utf-8")
    app = App.load(str(root / "digest.toml"))
    with app.store.session() as s:
        list_row = ensure_list(s, app.settings)
        for i in range(5):
            upsert_article(s, Article(id=f"b{i}", title=f"Fictional benchmark story {i}", outlet="Example Gazette",
                                      url=f"https://news.example.org/b{i}", published_at=NOW - timedelta(hours=i + 1),
                                      summary="A made-up summary.", quick_looks=["One.", "Two."], language="en"),
                           now=NOW)
        list_id = list_row.id
    for start in range(0, n, 20_000):
        with app.store.session() as s:
            s.execute(insert(SubscriberRow), [
                {"list_id": list_id, "email": f"r{i}@example.com", "email_key": f"r{i}@example.com",
                 "name": f"Reader {i}", "status": "active", "topics": [], "paused": False, "soft_bounces": 0,
                 "created_at": NOW, "active_since": NOW}
                for i in range(start, min(n, start + 20_000))])
    return app


def _stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_standin/stats", timeout=10) as r:
        return dict(json.load(r)["stats"])


@contextmanager
def _standin() -> Iterator[int]:
    port = _free_port()
    os.environ["SENDGRID_API_KEY"] = API_KEY
    server = subprocess.Popen([sys.executable, "-m", "digest", "dev", "sendgrid", "--port", str(port), "--no-record"],
                              env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                _stats(port)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)


@dataclass
class _Run:
    requests: int
    wall: float
    cpu: float  # of this process (the sender; the stand-in and any worker processes not included)
    peak: int


def _send_once(n: int, *, trace: bool = False, database_url: str | None = None, workers: int = 1) -> _Run:
    """One edition sent to n subscribers through the stand-in, in a store of its own."""
    from digest.send.dispatch import send_edition

    with _standin() as port, tempfile.TemporaryDirectory() as tmp:
        app = _project(Path(tmp) / "newsroom", n, port, database_url or f"sqlite:///{Path(tmp) / 'bench.db'}")

        def send() -> Any:
            return send_edition(app, date=NOW.date(), progress=False, now=NOW, workers=workers)

        start, cpu = time.perf_counter(), cpu_seconds()
        summary, peak = peak_memory(send) if trace else (send(), 0)
        wall, cpu = time.perf_counter() - start, cpu_seconds() - cpu
        assert summary.sent == n and summary.workers == workers, summary
        requests = _stats(port).get("mail_send_requests_accepted", 0)
        app.close()
    return _Run(requests, wall, cpu, peak)


@contextmanager
def _postgres_database() -> Iterator[str | None]:
    """A database of the benchmark's own on DIGEST_TEST_POSTGRES_URL's server (None without one), dropped after."""
    url = os.environ.get("DIGEST_TEST_POSTGRES_URL", "")
    if not url:
        yield None
        return
    import sqlalchemy as sa

    base = sa.engine.make_url(url)
    admin = sa.create_engine(base.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"digest_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_send() -> list[BenchResult]:
    n = scaled(100_000)
    # tracemalloc slows Python down, so the full-size send is timed without it and memory is measured on two
    # smaller sends, both many batches long.
    run = _send_once(n)
    small, large = max(2000, n // 50), max(10_000, n // 10)
    peak_small = _send_once(small, trace=True).peak
    peak = _send_once(large, trace=True).peak
    expected = math.ceil(n / 1000)
    return [
        BenchResult("send_requests", run.requests, "requests", n, n / max(1, run.requests), n,
                    {"expected": expected, "ok": run.requests == expected}),
        BenchResult("send_throughput", n / run.wall, "msg/s", None, None, n,
                    {"wall_seconds": round(run.wall, 2), "sender_cpu_seconds": round(run.cpu, 2),
                     "per_minute": round(60 * n / run.wall)}),
        BenchResult("send_peak_memory", peak / 1e6, "MB", peak_small / 1e6, peak_small / max(1, peak), large,
                    {"baseline_is": f"the same send at N={small}: ratio ≈ 1 means memory does not grow with N"}),
    ]


def bench_workers() -> list[BenchResult]:
    n = scaled(100_000)
    with _postgres_database() as one_url:
        if one_url is None:
            print("send_workers: skipped (set DIGEST_TEST_POSTGRES_URL to a PostgreSQL server)", file=sys.stderr)
            return []
        one = _send_once(n, database_url=one_url)
    with _postgres_database() as two_url:
        assert two_url is not None
        two = _send_once(n, database_url=two_url, workers=2)
    return [BenchResult("send_workers", n / two.wall, "msg/s", n / one.wall, one.wall / two.wall, n,
                        {"one_worker_seconds": round(one.wall, 2), "two_workers_seconds": round(two.wall, 2),
                         "cores": os.cpu_count(), "requests": two.requests})]


def run() -> list[BenchResult]:
    return [bench_mime(), *bench_send(), *bench_workers()]
