"""One rule per value wherever it enters: the name limit (file, command line, web form and API), topic
normalization, the field an error names, and confirmation links of an import that work."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from digest.audience import tokens
from digest.audience.csv import read_csv
from digest.audience.lifecycle import email_hash
from digest.audience.validate import MAX_NAME, Invalid, all_timezones, clean_name, parse_topics
from digest.ingest.topics import normalize_topic
from digest.store.tables import SubscriberRow
from digest.web.public import create_app

from .audience_support import Web, confirm_links, path_of
from .conftest import Project

LONG_NAME = "N" * 400
TOO_LONG = f"a name may have at most {MAX_NAME} characters (this one has 400)"


def stored(app: Any) -> list[SubscriberRow]:
    with app.store.session() as session:
        return list(session.scalars(select(SubscriberRow).order_by(SubscriberRow.id)))


@pytest.fixture
def site(project: Project) -> Iterator[tuple[Project, Any, Web]]:
    project.run("lists", "create", "daily", "--topics", "politics,sports,address book")
    app = project.app()
    web = Web(create_app(app))
    yield project, app, web
    web.close()
    app.close()


# --- the name limit ---------------------------------------------------------------------------------------


def test_clean_name_enforces_the_column_size() -> None:
    assert clean_name("N" * MAX_NAME) == "N" * MAX_NAME
    assert clean_name("  " + "N" * MAX_NAME + "\n") == "N" * MAX_NAME  # measured after cleaning
    with pytest.raises(Invalid, match=r"a name may have at most 300 characters \(this one has 301\)"):
        clean_name("N" * 301)


def test_subscribers_add_refuses_a_name_longer_than_the_column(project: Project) -> None:
    result = project.run("subscribers", "add", "long@example.org", "--name", LONG_NAME, ok=False)
    assert result.exit_code != 0
    assert f"long@example.org: {TOO_LONG}" in result.stderr
    assert "database" not in result.stderr.lower()
    assert project.json("subscribers", "ls") == []
    project.run("subscribers", "add", "fits@example.org", "--name", "N" * MAX_NAME)
    assert project.json("subscribers", "show", "fits@example.org")["name"] == "N" * MAX_NAME


def test_a_csv_row_with_a_long_name_gives_the_same_reason(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(f"email,name\nlong@example.org,{LONG_NAME}\nfits@example.org,{'N' * MAX_NAME}\n",
                    encoding="utf-8")
    parsed = read_csv(path)
    assert [(i.line, i.reason) for i in parsed.rejected] == [(2, TOO_LONG)]
    assert [r.email for r in parsed.records] == ["fits@example.org"]


def test_the_web_refuses_a_long_name_and_stores_nothing(site: tuple[Project, Any, Web]) -> None:
    project, app, web = site
    answer = web.post("/api/subscribe", json={"email": "api@example.org", "name": LONG_NAME})
    assert answer.status_code == 422 and answer.json() == {"error": f"name: {TOO_LONG}"}
    form = web.subscribe_form("form@example.org", name=LONG_NAME)
    assert form.status_code == 422 and TOO_LONG in form.text
    assert 'value="form@example.org"' in form.text  # the form comes back filled in
    assert stored(app) == [] and confirm_links(project.root) == []
    assert web.post("/api/subscribe", json={"email": "fits@example.org", "name": "N" * MAX_NAME}).status_code == 202
    assert [r.name for r in stored(app)] == ["N" * MAX_NAME]


# --- which field an error names ---------------------------------------------------------------------------


def test_a_bad_topic_is_named_as_the_topics_field(site: tuple[Project, Any, Web]) -> None:
    _, app, web = site
    # The message of an unknown topic holds the word "address": the field must still be topics.
    answer = web.post("/api/subscribe", json={"email": "t@example.org", "topics": ["address books"]})
    assert answer.status_code == 422 and answer.json()["error"].startswith("topics: unknown topic(s) address books")
    bad_email = web.post("/api/subscribe", json={"email": "not an address", "topics": ["sports"]})
    assert bad_email.status_code == 422 and bad_email.json()["error"].startswith("email: ")
    assert stored(app) == []


# --- topics -----------------------------------------------------------------------------------------------


def test_subscriber_topics_are_normalized_as_article_topics_are() -> None:
    raw = ["  World   News ", "Straße", "WORLD NEWS"]
    assert parse_topics(raw) == [normalize_topic(t) for t in raw[:2]] == ["world news", "strasse"]
    assert parse_topics("World  News; STRASSE", offered=["world news", "Straße"]) == ["world news", "strasse"]


# --- small things -----------------------------------------------------------------------------------------


def test_the_address_tag_in_tokens_is_the_address_hash() -> None:
    assert tokens.email_check(" Reader@Example.org ") == email_hash("reader@example.org")[:12]


def test_all_timezones_is_computed_once() -> None:
    zones = all_timezones()
    assert zones is all_timezones()
    assert list(zones) == sorted(zones) and "Europe/Berlin" in zones


# --- confirmations sent by an import ----------------------------------------------------------------------


def test_import_confirmation_links_confirm(project: Project) -> None:
    """The links an import sends carry the subscriber's last audit id: a new pending subscriber's and a
    resubscribed one's must both confirm."""
    project.run("subscribers", "add", "back@example.org")
    project.run("subscribers", "unsubscribe", "back@example.org")
    path = project.root / "people.csv"
    path.write_text("email,name,status\nnew@example.org,New,pending\nback@example.org,Back,pending\n",
                    encoding="utf-8")
    result = project.run("subscribers", "import", str(path), "--resubscribe", "--json")
    assert json.loads(result.stdout)["confirmations_sent"] == 2
    links = dict(confirm_links(project.root))
    assert sorted(links) == ["Back <back@example.org>", "New <new@example.org>"]
    app = project.app()
    web = Web(create_app(app))
    try:
        for link in links.values():
            assert web.post(path_of(link)).status_code == 200
    finally:
        web.close()
        app.close()
    assert {s["email"]: s["status"] for s in project.json("subscribers", "ls")} == {
        "back@example.org": "active", "new@example.org": "active"}


def test_an_import_without_a_status_activates_a_pending_subscriber(project: Project) -> None:
    project.run("subscribers", "add", "wait@example.org", "--status", "pending")
    path = project.root / "people.csv"
    path.write_text("email\nwait@example.org\n", encoding="utf-8")
    project.run("subscribers", "import", str(path))
    assert project.json("subscribers", "show", "wait@example.org")["status"] == "active"
