"""Sending benchmarks.

1. ``smtp_mime_build``: personalized multipart/alternative messages of about 60 KB per second, built from a
   variant encoded once (render's ``prepare_message``), against the naive way: an ``EmailMessage`` per reader
   (set_content + add_alternative + bytes), timed on a sample.
2. ``send_*``: one edition sent to N subscribers through the SendGrid stand-in (in its own process): mail/send
   requests made (must be ⌈N / 1,000⌉ for one variant; the naive baseline is one request per reader), wall
   time at N, and the Python-heap peak of the send at N/10 against N/50 (flat: rows are streamed from the store).
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
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

from benchmarks.harness import BenchResult, peak_memory, scaled, timed

API_KEY = "SG.bench-key"
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


def _project(root: Path, n: int, port: int) -> object:
    """A newsroom with a few fictional articles and ``n`` active subscribers, bulk-inserted."""
    from sqlalchemy import insert

    from digest.app import App
    from digest.audience.lists import ensure_list
    from digest.models import Article
    from digest.store.articles import upsert_article
    from digest.store.tables import SubscriberRow

    root.mkdir(parents=True, exist_ok=True)
    (root / "digest.toml").write_text(
        f'database_url = "sqlite:///{root / "bench.db"}"\nsecret_key = "bench-secret"\nbackend = "sendgrid"\n'
        f'sendgrid_host = "http://127.0.0.1:{port}"\nsendgrid_send_at_delay = 0\n', encoding="utf-8")
    app = App.load(str(root / "digest.toml"))
    now = datetime(2024, 5, 6, 7, 5, tzinfo=UTC)
    with app.store.session() as s:
        list_row = ensure_list(s, app.settings)
        for i in range(5):
            upsert_article(s, Article(id=f"b{i}", title=f"Fictional benchmark story {i}", outlet="Example Gazette",
                                      url=f"https://news.example.org/b{i}", published_at=now - timedelta(hours=i + 1),
                                      summary="A made-up summary.", quick_looks=["One.", "Two."]), now=now)
        list_id = list_row.id
    for start in range(0, n, 20_000):
        with app.store.session() as s:
            s.execute(insert(SubscriberRow), [
                {"list_id": list_id, "email": f"r{i}@example.com", "email_key": f"r{i}@example.com",
                 "name": f"Reader {i}", "status": "active", "topics": [], "paused": False, "soft_bounces": 0,
                 "created_at": now, "active_since": now}
                for i in range(start, min(n, start + 20_000))])
    return app


def _stats(port: int) -> dict[str, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/_standin/stats", timeout=10) as r:
        return dict(json.load(r)["stats"])


def _send_once(n: int, *, trace: bool) -> tuple[int, float, int]:
    """(mail/send requests, wall seconds, peak bytes or 0) of one edition sent to n subscribers."""
    from digest.send.dispatch import send_edition

    port = _free_port()
    env = {**os.environ, "SENDGRID_API_KEY": API_KEY}
    server = subprocess.Popen([sys.executable, "-m", "digest", "dev", "sendgrid", "--port", str(port), "--no-record"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.environ["SENDGRID_API_KEY"] = API_KEY
    try:
        with tempfile.TemporaryDirectory() as tmp:
            app = _project(Path(tmp) / "newsroom", n, port)
            deadline = time.monotonic() + 20
            while True:
                try:
                    _stats(port)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            start = time.perf_counter()
            def send() -> object:
                return send_edition(app, date=datetime(2024, 5, 6).date(), progress=False,  # type: ignore[arg-type]
                                    now=datetime(2024, 5, 6, 7, 5, tzinfo=UTC))

            summary, peak = peak_memory(send) if trace else (send(), 0)
            wall = time.perf_counter() - start
            assert summary.sent == n, summary  # type: ignore[attr-defined]
            requests = _stats(port).get("mail_send_requests_accepted", 0)
            app.close()  # type: ignore[attr-defined]
    finally:
        server.terminate()
        server.wait(timeout=10)
    return requests, wall, peak


def bench_send() -> list[BenchResult]:
    n = scaled(1_000_000)
    # tracemalloc slows Python down, so the full-size send is timed without it and memory is measured on two
    # smaller sends, both many batches long.
    requests, wall, _ = _send_once(n, trace=False)
    small, large = max(2000, n // 50), max(10_000, n // 10)
    _, _, peak_small = _send_once(small, trace=True)
    _, _, peak = _send_once(large, trace=True)
    expected = math.ceil(n / 1000)
    return [
        BenchResult("send_requests", requests, "requests", n, n / max(1, requests), n,
                    {"expected": expected, "ok": requests == expected}),
        BenchResult("send_throughput", n / wall, "msg/s", None, None, n, {"wall_seconds": round(wall, 2)}),
        BenchResult("send_peak_memory", peak / 1e6, "MB", peak_small / 1e6, peak_small / max(1, peak), large,
                    {"baseline_is": f"the same send at N={small}: ratio ≈ 1 means memory does not grow with N"}),
    ]


def run() -> list[BenchResult]:
    return [bench_mime(), *bench_send()]
