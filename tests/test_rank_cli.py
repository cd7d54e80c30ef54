"""`digest rank` end to end on both databases. All articles and addresses here are fictional."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from digest.editions import get_or_create_edition, local_today, upcoming_date
from digest.models import Article
from digest.store.articles import upsert_article
from digest.store.tables import MailingListRow, SubscriberRow

from .conftest import Project

CUTOFF = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)  # default list: 07:00 UTC
DATE = "2031-03-04"

FERRY = ("Harbour council approves new ferry timetable for the winter",
         "The council voted to add two late ferries on weekdays and a stop at the island school.")


def seed(project: Project) -> None:
    articles = [
        Article(id="ferry-gazette", title=FERRY[0], summary=FERRY[1], outlet="Fictional Gazette",
                published_at=CUTOFF - timedelta(hours=2), topics=["local"]),
        Article(id="ferry-courier", title=FERRY[0].replace("the winter", "winter"), summary=FERRY[1],
                outlet="Fictional Courier", published_at=CUTOFF - timedelta(hours=6), topics=["local"]),
        Article(id="orchestra", title="Local orchestra rehearses a forgotten symphony in the old mill",
                outlet="Fictional Gazette", published_at=CUTOFF - timedelta(hours=4), topics=["culture"]),
        Article(id="trains", title="Regional rail operator orders twelve quieter electric trains",
                outlet="Fictional Courier", published_at=CUTOFF - timedelta(hours=3), topics=["business"]),
        Article(id="late", title="Volunteers plant three thousand oak saplings along the river",
                outlet="Fictional Gazette", published_at=CUTOFF + timedelta(hours=1), topics=["local"]),
    ]
    app = project.app()
    try:
        with app.store.session() as s:
            for article in articles:
                upsert_article(s, article)
    finally:
        app.close()


def add_subscribers(project: Project, rows: list[tuple[str, list[str]]]) -> None:
    app = project.app()
    try:
        with app.store.session() as s:
            list_row = s.scalar(select(MailingListRow).where(MailingListRow.name == "daily"))
            assert list_row is not None
            for email, topics in rows:
                s.add(SubscriberRow(list_id=list_row.id, email=email, email_key=email.lower(), status="active",
                                    topics=topics))
    finally:
        app.close()


def test_rank_json_orders_collapses_and_explains_drops(project: Project) -> None:
    seed(project)
    data = project.json("rank", "--date", DATE)
    assert data["list"] == "daily" and data["date"] == DATE
    assert data["window_start"] == "2031-03-03T07:00:00+00:00" and data["window_end"] == "2031-03-04T07:00:00+00:00"
    assert [a["id"] for a in data["articles"]] == ["ferry-gazette", "trains", "orchestra"]
    first = data["articles"][0]
    assert first["title"] == FERRY[0] and first["topics"] == ["local"] and first["score"] > 0
    assert [o["id"] for o in first["also_covered_by"]] == ["ferry-courier"]
    assert first["also_covered_by"][0]["outlet"] == "Fictional Courier"
    assert "components" not in first
    assert {d["id"]: d["reason"] for d in data["dropped"]} == {
        "ferry-courier": "duplicate of ferry-gazette", "late": "outside the window"}
    assert data["thin"] is False


def test_rank_explain_topics_and_limit(project: Project) -> None:
    seed(project)
    data = project.json("rank", "--date", DATE, "--explain", "--topics", "culture", "--limit", "2")
    assert data["preferences"] == ["culture"]
    assert [a["id"] for a in data["articles"]] == ["orchestra", "ferry-gazette"]
    parts = data["articles"][0]["components"]
    assert set(parts) == {"freshness", "priority", "quality", "affinity", "engagement"}
    assert parts["affinity"] == 1.5
    assert abs(sum(parts.values()) - data["articles"][0]["score"]) < 1e-5
    # Why each is in: the reader's topic first; the rest fills up once no culture story is left.
    assert [(a["why"], a["counted_under"]) for a in data["articles"]] == [
        ("one of the reader's topics (culture)", "culture"),
        ("fills the rest: every story of the reader's topics (culture) that fits is already in", "local")]
    out = project.run("rank", "--date", DATE, "--explain", "--topics", "culture", "--limit", "2").stdout
    assert "2. fills the rest: every story of the reader's topics (culture) that fits is already in [counted under local]" in out
    assert {"id": "trains", "title": "Regional rail operator orders twelve quieter electric trains",
            "reason": "below the limit"} in data["dropped"]
    assert data["thin"] is False  # a --limit below min_articles is the caller's choice, not a thin day


def test_rank_is_deterministic_across_runs(project: Project) -> None:
    seed(project)
    first = project.run("rank", "--date", DATE, "--json").stdout
    assert project.run("rank", "--date", DATE, "--json").stdout == first


def test_rank_subscriber_uses_stored_preferences(project: Project) -> None:
    seed(project)
    project.run("rank", "--date", DATE)  # creates the default list on first use
    add_subscribers(project, [("reader@example.org", ["business"])])
    data = project.json("rank", "--date", DATE, "--subscriber", "Reader@Example.org")
    assert data["preferences"] == ["business"]
    assert data["articles"][0]["id"] == "trains"
    missing = project.run("rank", "--date", DATE, "--subscriber", "nobody@example.org", ok=False)
    assert missing.exit_code != 0 and "nobody@example.org" in missing.output
    both = project.run("rank", "--subscriber", "reader@example.org", "--topics", "x", ok=False)
    assert both.exit_code != 0 and "not both" in both.output


def test_rank_variants_counts_subscribers(project: Project) -> None:
    seed(project)
    project.run("rank", "--date", DATE)
    add_subscribers(project, [("a@example.org", ["culture"]), ("b@example.org", ["culture"]),
                              ("c@example.org", ["business"])])
    data = project.json("rank", "--date", DATE, "--variants")
    assert [(v["subscribers"], v["profiles"]) for v in data["variants"]] == [(2, [["culture"]]), (1, [["business"]])]
    assert data["variants"][0]["articles"][0]["id"] == "orchestra"
    table = project.run("rank", "--date", DATE, "--variants").stdout
    assert "2 variant(s)" in table and "culture" in table


def test_rank_table_output_and_errors(project: Project) -> None:
    seed(project)
    out = project.run("rank", "--date", DATE, "--explain").stdout
    assert "Harbour council" in out and "Courier" in out
    assert "Left out: 1 duplicate, 1 outside the window" in out
    assert "Score components" in out and "freshness" in out and "duplicate of ferry-gazette" in out
    unknown = project.run("rank", "--list", "nope", ok=False)
    assert unknown.exit_code != 0 and "no list named 'nope'" in unknown.output
    bad_date = project.run("rank", "--date", "04.03.2031", ok=False)
    assert bad_date.exit_code != 0 and "--date" in bad_date.output
    help_text = project.run("rank", "--help").stdout
    assert "--variants" in help_text and "--explain" in help_text


def test_rank_thin_day_message(project: Project) -> None:
    seed(project)
    project.write_config("min_articles = 5\nskip_thin_days = true\n")
    result = project.run("rank", "--date", DATE)
    assert "Thin day" in result.stderr and "skipped" in result.stderr
    data = project.json("rank", "--date", DATE)
    assert data["thin"] is True and data["skip"] is True


def test_rank_pinned_leads_and_topic_cap_holds_through_the_store(project: Project) -> None:
    seed(project)
    app = project.app()
    try:
        with app.store.session() as s:
            upsert_article(s, Article(id="library", title="City library extends opening hours during exam season",
                                      outlet="Fictional Courier", published_at=CUTOFF - timedelta(hours=1),
                                      topics=["local"]))
    finally:
        app.close()
    project.write_config("max_per_topic = 1\n")
    data = project.json("rank", "--date", DATE)
    # Fresher wins at equal priority: the library story (1 h old) leads; the ferry story (2 h), also local, is
    # held back by the cap of one article per topic.
    assert [a["id"] for a in data["articles"]] == ["library", "trains", "orchestra"]
    assert {d["id"]: d["reason"] for d in data["dropped"]} == {
        "ferry-gazette": "topic cap", "ferry-courier": "duplicate of ferry-gazette", "late": "outside the window"}

    project.run("articles", "pin", "orchestra")  # the editor's pick goes first, whatever its score
    pinned = project.json("rank", "--date", DATE, "--explain")
    assert pinned["articles"][0]["id"] == "orchestra" and pinned["articles"][0]["pinned"] is True
    assert pinned["articles"][0]["components"]["pinned"] == 1.0
    assert pinned["articles"][0]["score"] < pinned["articles"][1]["score"]  # placed first, not scored higher
    project.run("articles", "unpin", "orchestra")
    assert project.json("rank", "--date", DATE)["articles"][0]["id"] == "library"


def test_rank_without_date_shows_the_edition_build_and_the_preview_show(project: Project) -> None:
    # Once today's edition went out, the next one to go out is tomorrow's: `digest rank` must not keep showing
    # (and drafting) today's, while `digest build` renders tomorrow's.
    project.run("rank", "--date", DATE)  # creates the default list
    app = project.app()
    try:
        with app.store.session() as s:
            list_row = s.scalar(select(MailingListRow).where(MailingListRow.name == "daily"))
            assert list_row is not None
            today = local_today(list_row)
            get_or_create_edition(s, app.settings, list_row, today).status = "sent"
        with app.store.session() as s:
            list_row = s.scalar(select(MailingListRow).where(MailingListRow.name == "daily"))
            assert list_row is not None
            upcoming = upcoming_date(s, app.settings, list_row)
    finally:
        app.close()
    assert upcoming > today
    data = project.json("rank")
    assert data["date"] == upcoming.isoformat() == project.json("build", "--out", "editions")["date"]
