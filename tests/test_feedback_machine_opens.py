"""Machine opens (Apple Mail Privacy Protection, scanners) are `machine_opened`, never `opened`: flagged by
SendGrid (`sg_machine_open`) or recognisable (a known proxy within seconds of delivery). Rates and ranking rest on
people: open rates on human opens, engagement on clicks only."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from starlette.applications import Starlette

from digest.app import App
from digest.feedback.stats import clicks_per_topic, edition_stats
from digest.store.tables import EventRow
from digest.web.webhooks import webhook_routes
from tests.feedback_support import Signer, World, body_of, build_world, settings_for, sg_event

CUTOFF = datetime(2024, 5, 1, 6, tzinfo=UTC)  # when build_world's first edition was sent
APPLE_PROXY = "17.58.63.10"


@pytest.fixture
def signer() -> Signer:
    return Signer()


@pytest.fixture
def app(tmp_path: Path, db_url: str, signer: Signer) -> Iterator[App]:
    digest_app = App(settings_for(tmp_path, db_url, sendgrid_webhook_public_key=signer.public_b64))
    yield digest_app
    digest_app.close()


@pytest.fixture
def world(app: App) -> World:
    with app.store.session() as s:
        return build_world(s, app.settings)


def deliver(app: App, signer: Signer, events: list[dict[str, Any]]) -> None:
    body = body_of(events)

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=Starlette(routes=webhook_routes(app)))
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.post("http://127.0.0.1/webhooks/sendgrid", content=body,
                                     headers=signer.headers(body))

    response = asyncio.run(go())
    assert response.status_code == 200, response.text


def counts(app: App, edition_id: int) -> dict[str, int]:
    with app.store.session() as s:
        return edition_stats(s, edition_id).counts


def test_sg_machine_open_is_counted_apart_and_rates_use_the_human_open(app: App, world: World,
                                                                      signer: Signer) -> None:
    edition = world.editions[0]
    on = {"edition_id": edition, "at": CUTOFF + timedelta(hours=1)}
    deliver(app, signer, [
        sg_event("delivered", "Alice@Example.org", subscriber_id=world.sub("alice@daily"), **on),
        sg_event("delivered", "bob@example.org", subscriber_id=world.sub("bob@daily"), **on),
        sg_event("open", "Alice@Example.org", subscriber_id=world.sub("alice@daily"), sg_machine_open=True, **on),
        sg_event("open", "bob@example.org", subscriber_id=world.sub("bob@daily"), sg_machine_open=False, **on),
    ])
    c = counts(app, edition)
    assert (c["opened"], c["machine_opened"], c["delivered"]) == (1, 1, 2)
    with app.store.session() as s:
        stats = edition_stats(s, edition)
        assert stats.rates["open_rate"] == 0.5
        stored = dict(s.execute(select(EventRow.email_key, EventRow.type).where(EventRow.type.like("%opened"))).all())
    assert stored == {"alice@example.org": "machine_opened", "bob@example.org": "opened"}


def test_an_open_from_a_known_proxy_within_seconds_of_delivery_is_a_machines(app: App, world: World,
                                                                            signer: Signer) -> None:
    edition = world.editions[0]
    delivered = CUTOFF + timedelta(minutes=2)
    carol = {"edition_id": edition, "subscriber_id": world.sub("carol@daily")}
    bob = {"edition_id": edition, "subscriber_id": world.sub("bob@daily")}
    deliver(app, signer, [
        sg_event("delivered", "carol@example.org", at=delivered, **carol),
        # Apple's proxy on arrival (no flag from the provider): a machine; the same proxy an hour later: Carol.
        sg_event("open", "carol@example.org", at=delivered + timedelta(seconds=4), ip=APPLE_PROXY, **carol),
        sg_event("open", "carol@example.org", at=delivered + timedelta(hours=1), ip=APPLE_PROXY, **carol),
        # No delivered event for Bob: our own sent time (the cut-off) is the delivery; a scanner at once.
        sg_event("open", "bob@example.org", at=CUTOFF + timedelta(seconds=2), ip="203.0.113.9",
                 useragent="Mozilla/5.0 (compatible; Mimecast URL Protect)", **bob),
    ])
    with app.store.session() as s:
        kinds = sorted((k, t) for k, t in s.execute(select(EventRow.email_key, EventRow.type)
                                                    .where(EventRow.type.like("%opened"))))
    assert kinds == [("bob@example.org", "machine_opened"), ("carol@example.org", "machine_opened"),
                     ("carol@example.org", "opened")]
    c = counts(app, edition)
    assert (c["opened"], c["machine_opened"]) == (1, 2)


def test_a_quick_open_from_an_ordinary_address_is_a_person(app: App, world: World, signer: Signer) -> None:
    edition = world.editions[0]
    deliver(app, signer, [
        sg_event("open", "bob@example.org", edition_id=edition, subscriber_id=world.sub("bob@daily"),
                 at=CUTOFF + timedelta(seconds=3), ip="198.51.100.7", useragent="Mozilla/5.0 (Macintosh)"),
    ])
    assert (counts(app, edition)["opened"], counts(app, edition)["machine_opened"]) == (1, 0)


def test_engagement_ranking_rests_on_clicks_not_opens(app: App, world: World, signer: Signer) -> None:
    edition = world.editions[0]
    on = {"edition_id": edition, "at": CUTOFF + timedelta(hours=1)}
    deliver(app, signer, [
        sg_event("open", "bob@example.org", subscriber_id=world.sub("bob@daily"), **on),
        sg_event("open", "carol@example.org", subscriber_id=world.sub("carol@daily"), sg_machine_open=True, **on),
    ])
    with app.store.session() as s:
        assert clicks_per_topic(s, world.daily) == {}
    deliver(app, signer, [sg_event("click", "bob@example.org", subscriber_id=world.sub("bob@daily"),
                                   url=world.urls["harbour"], **on)])
    with app.store.session() as s:
        assert clicks_per_topic(s, world.daily) == {"local": 1.0, "transport": 1.0}


def test_stats_show_machine_opens_beside_human_ones(app: App, world: World, signer: Signer) -> None:
    edition = world.editions[0]
    bob = {"edition_id": edition, "subscriber_id": world.sub("bob@daily"), "at": CUTOFF + timedelta(hours=1)}
    deliver(app, signer, [sg_event("delivered", "bob@example.org", **bob),
                          sg_event("open", "bob@example.org", sg_machine_open="true", **bob)])
    with app.store.session() as s:
        data = edition_stats(s, edition).to_json()
    assert data["machine_opened"] == 1 and data["opened"] == 0 and data["rates"]["open_rate"] == 0.0
