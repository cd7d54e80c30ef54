"""The whole loop: send through the SendGrid stand-in, SendGrid's signed events come back to the webhook with the
custom_args each personalization carried, and the next send skips the bounced address. Both databases."""

from __future__ import annotations

import asyncio
import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from digest.app import App
from digest.feedback.stats import edition_stats
from digest.models import Article
from digest.send.dispatch import send_edition
from digest.send.standin import Received, StandinServer
from digest.store.articles import upsert_article
from digest.web.webhooks import webhook_routes
from tests.feedback_support import Signer, body_of, settings_for, sg_event
from tests.send_support import DAY, NOW, add_articles, add_subscribers


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def app(tmp_path: Path, db_url: str, standin: StandinServer, signer: Signer,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    monkeypatch.setenv("SENDGRID_API_KEY", standin.state.api_key)
    digest_app = App(settings_for(tmp_path, db_url, backend="sendgrid", sendgrid_host=standin.url,
                                  sendgrid_send_at_delay=0, send_backoff_seconds=0.01,
                                  secret_key="feedback-loop-secret-" + "y" * 24,
                                  sendgrid_webhook_public_key=signer.public_b64))
    yield digest_app
    digest_app.close()


def as_sendgrid_event(message: Received, event: str, **extra: Any) -> dict[str, Any]:
    # SendGrid returns a personalization's custom_args as top-level fields of each of its events.
    return {**sg_event(event, message.email, **extra), **message.custom_args}


def post_events(app: App, signer: Signer, events: list[dict[str, Any]]) -> httpx.Response:
    body = body_of(events)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=Starlette(routes=webhook_routes(app)))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post("/webhooks/sendgrid", content=body,
                                     headers=signer.headers(body))

    return asyncio.run(go())


def test_a_bounce_reported_by_sendgrid_keeps_the_address_out_of_the_next_send(
        app: App, standin: StandinServer, signer: Signer) -> None:
    add_articles(app, 4)
    add_subscribers(app, 3)
    first = send_edition(app, date=DAY, now=NOW, progress=False)
    assert first.sent == 3, first.errors
    sent = standin.state.messages()
    assert sorted(m.email for m in sent) == ["reader0@example.com", "reader1@example.com", "reader2@example.com"]
    assert all({"edition_id", "subscriber_id"} <= set(m.custom_args) for m in sent)

    bounced = next(m for m in sent if m.email == "reader1@example.com")
    clicker = next(m for m in sent if m.email == "reader2@example.com")
    events = [as_sendgrid_event(m, "delivered") for m in sent if m is not bounced]
    events.append(as_sendgrid_event(bounced, "bounce", type="bounce", status="5.1.1",
                                    reason="550 5.1.1 mailbox does not exist"))
    events.append(as_sendgrid_event(clicker, "open"))
    # The link as the email carries it (SendGrid reports the original URL, UTM parameters and all).
    link = re.search(r'href="(https://news\.example\.org/art-(\d+)[^"]*)"', clicker.rendered())
    assert link is not None and "utm_" in link.group(1)
    events.append(as_sendgrid_event(clicker, "click", url=html.unescape(link.group(1))))
    response = post_events(app, signer, events)
    assert response.status_code == 200, response.text
    assert response.json()["suppressed"] == 1

    with app.store.session() as s:
        stats = edition_stats(s, first.edition_id or 0)
    assert stats.counts == {"sent": 3, "delivered": 2, "bounced": 1, "complained": 0, "unsubscribed": 0,
                            "opened": 1, "machine_opened": 0, "clicked": 1}
    assert [a.article_id for a in stats.top_articles] == [f"art{int(link.group(2)):03d}"]

    # The next day's edition, with the next day's news: reader1 is not mailed.
    next_day, later = DAY + timedelta(days=1), NOW + timedelta(days=1)
    with app.store.session() as s:
        for i in range(4):
            upsert_article(s, Article(id=f"next{i}", title=f"Fictional follow-up number {i}",
                                      outlet="The Example Gazette", url=f"https://news.example.org/next-{i}",
                                      published_at=later - timedelta(hours=2 + i), topics=["local"],
                                      summary=f"A made-up follow-up {i}."), now=later)
    standin.state.reset()
    second = send_edition(app, date=next_day, now=later, progress=False)
    assert second.sent == 2, second.errors
    assert sorted(m.email for m in standin.state.messages()) == ["reader0@example.com", "reader2@example.com"]
