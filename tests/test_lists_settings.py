"""A list's own min_articles, max_articles and skip_thin_days: set by `digest lists create` and `digest lists set`,
shown by `lists show`/`ls`, refused when they do not fit, and used by ranking. Both databases; fictional stories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from digest.audience.lists import ListError, create_list, new_list_row
from digest.config import Settings, default_values
from digest.models import Article
from digest.store.articles import upsert_article
from digest.store.tables import MailingListRow

from .conftest import Project

CUTOFF = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)  # a list with the default send time: 07:00 UTC
DATE = "2031-03-04"
STORIES = [
    ("ferry", "Harbour council approves new ferry timetable for the winter", "local"),
    ("orchestra", "Local orchestra rehearses a forgotten symphony in the old mill", "culture"),
    ("trains", "Regional rail operator orders twelve quieter electric trains", "business"),
    ("oaks", "Volunteers plant three thousand oak saplings along the river", "environment"),
]
FOLLOW = {"min_articles": None, "max_articles": None, "skip_thin_days": None}
DEFAULTS = {"min_articles": 3, "max_articles": 8, "skip_thin_days": False}


def limits(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return {k: data[k] for k in FOLLOW}, {k: v for k, v in data["effective"].items() if k in FOLLOW}


def seed(project: Project) -> None:
    app = project.app()
    try:
        with app.store.session() as s:
            for n, (aid, title, topic) in enumerate(STORIES, 1):
                upsert_article(s, Article(id=aid, title=title, outlet="Fictional Gazette", topics=[topic],
                                          published_at=CUTOFF - timedelta(hours=n)))
    finally:
        app.close()


def list_count(project: Project) -> int:
    app = project.app()
    try:
        with app.store.session() as s:
            return int(s.scalar(select(func.count()).select_from(MailingListRow)) or 0)
    finally:
        app.close()


def test_create_with_limits_and_show_them(project: Project) -> None:
    created = project.json("lists", "create", "morning", "--min-articles", "2", "--max-articles", "5",
                           "--skip-thin-days")
    assert limits(created) == ({"min_articles": 2, "max_articles": 5, "skip_thin_days": True},
                               {"min_articles": 2, "max_articles": 5, "skip_thin_days": True})
    plain = project.json("lists", "create", "evening", "--send-thin-days")
    assert limits(plain) == ({**FOLLOW, "skip_thin_days": False}, DEFAULTS)
    # Only one given: the other follows the settings, and must fit with them.
    only_max = project.json("lists", "create", "noon", "--max-articles", "4")
    assert limits(only_max) == ({**FOLLOW, "max_articles": 4}, {**DEFAULTS, "max_articles": 4})

    assert limits(project.json("lists", "show", "morning")) == limits(created)
    listed = {d["name"]: limits(d) for d in project.json("lists", "ls")}
    assert listed["morning"] == limits(created) and listed["evening"] == limits(plain)
    shown = project.run("lists", "show", "morning").stdout
    assert "max_articles: 5" in shown and "effective" in shown
    assert "max_articles 5 (own)" in project.run("lists", "create", "late", "--max-articles", "5").stdout

    # A list made without the options follows the settings, including later changes to them.
    project.write_config('outbox_dir = "outbox"\nmax_articles = 6\nskip_thin_days = true\n')
    assert limits(project.json("lists", "show", "evening")) == (
        {**FOLLOW, "skip_thin_days": False}, {"min_articles": 3, "max_articles": 6, "skip_thin_days": False})
    assert limits(project.json("lists", "show", "morning"))[1] == limits(created)[1]


def test_set_and_clear_limits(project: Project) -> None:
    project.run("lists", "create", "morning")
    assert limits(project.json("lists", "set", "morning")) == (FOLLOW, DEFAULTS)  # no option: only prints

    out = project.json("lists", "set", "morning", "--max-articles", "5")
    assert limits(out) == ({**FOLLOW, "max_articles": 5}, {**DEFAULTS, "max_articles": 5})
    # Only what is given changes; the list's own max_articles is what --min-articles must fit under now.
    out = project.json("lists", "set", "morning", "--min-articles", "5", "--skip-thin-days")
    assert limits(out)[0] == {"min_articles": 5, "max_articles": 5, "skip_thin_days": True}
    out = project.json("lists", "set", "morning", "--send-thin-days")
    assert limits(out)[0] == {"min_articles": 5, "max_articles": 5, "skip_thin_days": False}
    assert limits(project.json("lists", "show", "morning")) == limits(out)

    # --clear-limits: follow the settings again, then set whatever else is given.
    out = project.json("lists", "set", "morning", "--clear-limits", "--max-articles", "10")
    assert limits(out) == ({**FOLLOW, "max_articles": 10}, {**DEFAULTS, "max_articles": 10})
    assert limits(project.json("lists", "set", "morning", "--clear-limits")) == (FOLLOW, DEFAULTS)
    # Clearing a max the list's min depended on is checked against the settings' max.
    project.run("lists", "set", "morning", "--min-articles", "1", "--max-articles", "1")
    text = project.run("lists", "set", "morning", "--clear-limits", "--min-articles", "0").stdout
    assert text.strip() == "morning: min_articles 0 (own), max_articles 8 (settings), thin days sent (settings)"
    assert "--clear-limits" in project.run("lists", "set", "--help").stdout


def test_bad_limits_are_refused_and_change_nothing(project: Project) -> None:
    project.run("lists", "create", "morning", "--min-articles", "2", "--max-articles", "5")
    before = project.json("lists", "show", "morning")
    for args, message in [
        (("--max-articles", "0"), "--max-articles: must be at least 1, not 0"),
        (("--min-articles", "-1"), "--min-articles: must be 0 or more, not -1"),
        (("--min-articles", "6", "--max-articles", "5"), "--min-articles: 6 is more than --max-articles (5)"),
        (("--min-articles", "6"), "--min-articles: 6 is more than max_articles (5, set on the list)"),
        (("--max-articles", "1", "--skip-thin-days"), "--max-articles: 1 is less than min_articles (2, set"),
        (("--clear-limits", "--max-articles", "2"), "--max-articles: 2 is less than min_articles (3, from"),
        (("--min-articles", "many"), "'--min-articles': 'many' is not a valid integer"),
    ]:
        result = project.run("lists", "set", "morning", *args, ok=False)
        assert result.exit_code != 0 and message in result.stderr, (args, result.stderr)
        assert project.json("lists", "show", "morning") == before, args
    missing = project.run("lists", "set", "nope", "--max-articles", "3", ok=False)
    assert "no list named 'nope'" in missing.stderr

    for args, message in [
        (("--max-articles", "2"), "--max-articles: 2 is less than min_articles (3, from the settings)"),
        (("--min-articles", "9"), "--min-articles: 9 is more than max_articles (8, from the settings)"),
        (("--min-articles", "4", "--max-articles", "3"), "--min-articles: 4 is more than --max-articles (3)"),
        (("--max-articles", "0"), "--max-articles: must be at least 1, not 0"),
    ]:
        result = project.run("lists", "create", "evening", *args, ok=False)
        assert result.exit_code != 0 and message in result.stderr, (args, result.stderr)
    assert list_count(project) == 1
    # The settings' own values are the ones to fit when they differ from the built-in defaults.
    project.write_config('outbox_dir = "outbox"\nmin_articles = 1\n')
    assert project.json("lists", "create", "evening", "--max-articles", "2")["effective"]["min_articles"] == 1


def test_the_lists_values_take_effect(project: Project) -> None:
    seed(project)
    project.run("lists", "create", "daily", "--min-articles", "1", "--max-articles", "2")
    data = project.json("rank", "--list", "daily", "--date", DATE)
    assert [a["id"] for a in data["articles"]] == ["ferry", "orchestra"] and data["thin"] is False
    assert {d["id"]: d["reason"] for d in data["dropped"]} == {"trains": "below the limit",
                                                               "oaks": "below the limit"}

    # Four articles, fewer than the list's min of 5: a thin day, skipped because the list says so.
    project.run("lists", "set", "daily", "--min-articles", "5", "--max-articles", "6", "--skip-thin-days")
    data = project.json("rank", "--list", "daily", "--date", DATE)
    assert len(data["articles"]) == 4 and data["thin"] is True and data["skip"] is True
    assert "would be skipped" in project.run("rank", "--list", "daily", "--date", DATE).stderr
    project.run("lists", "set", "daily", "--send-thin-days")
    data = project.json("rank", "--list", "daily", "--date", DATE)
    assert data["thin"] is True and data["skip"] is False

    # Following the settings again: min 3, max 8, not thin; and the settings' skip_thin_days counts once more.
    project.run("lists", "set", "daily", "--clear-limits")
    data = project.json("rank", "--list", "daily", "--date", DATE)
    assert len(data["articles"]) == 4 and data["thin"] is False
    project.write_config('outbox_dir = "outbox"\nmin_articles = 5\nmax_articles = 6\nskip_thin_days = true\n')
    data = project.json("rank", "--list", "daily", "--date", DATE)
    assert data["thin"] is True and data["skip"] is True
    project.run("lists", "set", "daily", "--min-articles", "4")  # the list's own min beats the settings'
    assert project.json("rank", "--list", "daily", "--date", DATE)["thin"] is False


def test_create_checks_only_the_options_given(project: Project) -> None:
    # A bad default in the config is reported as the config's, when the settings load: never as an option the
    # user did not type.
    result = project.run("lists", "create", "morning", env={"DIGEST_TIMEZONE": "Mars/Olympus"}, ok=False)
    assert result.exit_code != 0 and "DIGEST_TIMEZONE" in result.stderr and "--timezone" not in result.stderr


def test_create_list_takes_its_defaults_from_new_list_row(project: Project, tmp_path: Path) -> None:
    settings = Settings(default_values(), tmp_path).replace(
        from_name="Desk", reply_to="letters@news.example", timezone="Europe/Berlin", send_time="06:30",
        double_opt_in=False)
    columns = ("from_email", "from_name", "reply_to", "topics", "timezone", "send_time", "double_opt_in", "title",
               "min_articles", "max_articles", "skip_thin_days", "schedule", "require_approval")
    app = project.app()
    try:
        with app.store.session() as s:
            made = create_list(s, settings, "morning", from_name="  ", reply_to="", topics="")
            expected = new_list_row(settings, "morning")
            assert {c: getattr(made, c) for c in columns} == {c: getattr(expected, c) for c in columns} | {
                "schedule": None, "require_approval": False}
            given = create_list(s, settings, "evening", from_email="Desk@News.Example", send_time="6:05",
                                double_opt_in=True, min_articles=0, max_articles=1, skip_thin_days=False)
            assert (given.from_email, given.send_time, given.double_opt_in) == ("Desk@news.example", "06:05", True)
            assert (given.min_articles, given.max_articles, given.skip_thin_days) == (0, 1, False)
            # A from name given is one header-safe line, as subscribers' names are.
            assert create_list(s, settings, "night", from_name=" Night\r\nBcc: x@example.org ").from_name == (
                "Night Bcc: x@example.org")
            try:
                create_list(s, settings, "noon", send_time="25:00", max_articles=0)
            except ListError as exc:
                assert str(exc).startswith("--send-time:")
            else:
                raise AssertionError("a bad --send-time was accepted")
    finally:
        app.close()
