"""`digest ingest` and `digest articles` end to end, on SQLite and PostgreSQL (the `project` fixture)."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from digest.ingest.pipeline import ingest_sources, parse_bytes
from digest.store.articles import upsert_article
from digest.store.db import Store
from digest.store.tables import ArticleRow

from .conftest import REPO, Project

SEED = "samples/newslooks/next-time-in-moscow.txt"
SAMPLES = REPO / "samples"


def _ingest(project: Project, *args: str, ok: bool = True, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    result = project.run("ingest", *args, "--json", ok=ok, **kwargs)
    return result.exit_code, json.loads(result.stdout)


def _articles(project: Project, *args: str) -> list[dict[str, Any]]:
    return project.json("articles", *args)  # type: ignore[no-any-return]


def test_seed_ingests_and_lists_with_its_first_seen_time(project: Project, shared_dir: Path) -> None:
    before = datetime.now(UTC)
    code, report = _ingest(project, str(shared_dir / SEED))
    assert code == 0
    assert report["totals"] == {"new": 1, "updated": 0, "unchanged": 0, "failed": 0}
    assert report["sources"][0]["format"] == "newslooks"
    [article] = _articles(project)
    assert article["title"] == "‘Next Time in Moscow’: Putin Extends Trump Invitation as Summit Ends"
    assert article["author"] == "J. Mansour" and article["dateline"] == "WASHINGTON"
    assert len(article["quick_looks"]) == 8 and article["quick_looks_derived"] is False
    assert [s["heading"] for s in article["sections"]][1:] == [
        "Symbolism of a Potential Moscow Visit", "A Summit Without Breakthroughs", "The Larger Context",
        "The Road Ahead"]
    published = datetime.fromisoformat(article["published_at"])
    assert before - timedelta(seconds=1) <= published <= datetime.now(UTC)
    assert article["id"] == report["sources"][0]["articles"][0]


def test_reingest_is_idempotent_and_published_moves_the_date(project: Project, shared_dir: Path) -> None:
    seed = str(shared_dir / SEED)
    _ingest(project, seed)
    first_seen = _articles(project)[0]["published_at"]
    time.sleep(0.01)
    _, again = _ingest(project, seed)
    assert again["totals"] == {"new": 0, "updated": 0, "unchanged": 1, "failed": 0}
    assert [a["published_at"] for a in _articles(project)] == [first_seen]  # one article, same first-seen time

    _, moved = _ingest(project, seed, "--published", "2025-08-16T09:00:00+00:00")
    assert moved["totals"]["updated"] == 1
    assert _articles(project)[0]["published_at"] == "2025-08-16T09:00:00+00:00"
    _, kept = _ingest(project, seed)  # no --published: the stored date stays
    assert kept["totals"]["unchanged"] == 1
    assert _articles(project)[0]["published_at"] == "2025-08-16T09:00:00+00:00"

    # A time without a zone is the newsroom's (timezone setting).
    _ingest(project, seed, "--published", "2025-08-17T07:30", env={"DIGEST_TIMEZONE": "Europe/Berlin"})
    assert _articles(project)[0]["published_at"] == "2025-08-17T05:30:00+00:00"
    bad = project.run("ingest", seed, "--published", "next tuesday", ok=False)
    assert bad.exit_code == 2 and "--published" in bad.output and "ISO 8601" in bad.output


def test_an_edited_article_is_updated_not_duplicated(project: Project, shared_dir: Path, tmp_path: Path) -> None:
    copy = tmp_path / "moscow.txt"
    text = (shared_dir / SEED).read_text(encoding="utf-8")
    copy.write_text(text, encoding="utf-8")
    _ingest(project, str(copy))
    copy.write_text(text.replace("The Road Ahead\n", "The Road Ahead\nA paragraph added in a correction.\n"),
                    encoding="utf-8")
    _, report = _ingest(project, str(copy))
    assert report["totals"] == {"new": 0, "updated": 1, "unchanged": 0, "failed": 0}
    [article] = _articles(project)
    assert article["sections"][-1]["paragraphs"][0] == "A paragraph added in a correction."


def test_a_broken_source_fails_alone_and_changes_nothing(project: Project, shared_dir: Path,
                                                         tmp_path: Path) -> None:
    good = {"id": "good-one", "title": "A Good Article", "summary": "It parses.", "quick_looks": ["One."],
            "published_at": "2025-08-16T09:00:00+00:00"}
    (tmp_path / "good.json").write_text(json.dumps([good]), encoding="utf-8")
    _ingest(project, str(tmp_path / "good.json"))

    # An edit of the stored article followed by a broken record: the whole file must change nothing.
    edited = {**good, "title": "An Edited Title"}
    (tmp_path / "broken.jsonl").write_text(
        json.dumps(edited) + "\n" + json.dumps({"title": "Fine", "id": "fine"}) + "\n" + '{"title": 5}\n',
        encoding="utf-8")
    (tmp_path / "prose.txt").write_text("Dear editor,\nthis is a letter, not an article.\n", encoding="utf-8")
    code, report = _ingest(project, str(tmp_path / "broken.jsonl"), str(shared_dir / SEED),
                           str(tmp_path / "prose.txt"), str(tmp_path / "missing.txt"), ok=False)
    assert code == 1
    by_source = {Path(s["source"]).name: s for s in report["sources"]}
    assert by_source["broken.jsonl"]["status"] == "failed"
    assert by_source["broken.jsonl"]["error"] == (
        f"{tmp_path / 'broken.jsonl'}:3: field 'title' must be a non-empty string")
    assert by_source["prose.txt"]["error"].startswith(f"{tmp_path / 'prose.txt'}:1: not a Newslooks article")
    assert by_source["missing.txt"]["error"] == f"{tmp_path / 'missing.txt'}: no such file or folder"
    assert by_source["next-time-in-moscow.txt"]["status"] == "ok" and by_source["next-time-in-moscow.txt"]["new"] == 1
    assert report["totals"] == {"new": 1, "updated": 0, "unchanged": 0, "failed": 3}

    stored = {a["id"]: a for a in _articles(project)}
    assert stored["good-one"]["title"] == "A Good Article"  # the failed file's edit never landed
    assert "fine" not in stored  # nor its valid records
    assert len(stored) == 2

    table = project.run("ingest", str(tmp_path / "prose.txt"), ok=False)
    assert table.exit_code == 1 and "not a Newslooks article" in table.stderr


def test_stdin_and_folders(project: Project, shared_dir: Path) -> None:
    code, report = _ingest(project, "-", input=(shared_dir / SEED).read_bytes())
    assert code == 0 and report["sources"][0]["source"] == "<stdin>" and report["totals"]["new"] == 1
    assert _articles(project)[0]["source"] == "<stdin>"

    _, politics = _ingest(project, str(SAMPLES / "articles" / "politics"), "--topic", "Politics")
    assert politics["totals"]["new"] == 2 and len(politics["sources"]) == 2  # one source per file
    assert {a["id"] for a in _articles(project, "--topic", "politics")} == {
        article_id for s in politics["sources"] for article_id in s["articles"]}

    # The whole tree, without --topic: the politics files are unchanged and keep the topic they were filed under.
    _, everything = _ingest(project, str(SAMPLES / "articles"))
    assert everything["totals"]["new"] >= 6 and everything["totals"]["unchanged"] == 2
    assert len(_articles(project, "--topic", "politics")) == 2
    assert len(_articles(project)) == 1 + 2 + everything["totals"]["new"]


def test_a_folder_without_article_files_fails(project: Project, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.md").write_text("not an article file", encoding="utf-8")
    code, report = _ingest(project, str(tmp_path / "empty"), ok=False)
    assert code == 1 and "no article files" in report["sources"][0]["error"]


def test_topics_from_option_rules_and_categories(project: Project, shared_dir: Path) -> None:
    project.write_config(
        'outbox_dir = "outbox"\n'
        '[[topic_rules]]\ntopic = "politics"\ncategories = ["US politics"]\n'
        '[[topic_rules]]\ntopic = "russia"\nkeywords = ["Putin"]\n'
        '[[topic_rules]]\ntopic = "tech"\noutlets = ["heise developer neueste Meldungen"]\n')
    _ingest(project, str(shared_dir / SEED), "--topic", "World")
    _ingest(project, str(shared_dir / "samples/feeds/guardian_us_2018-01-31.rss"))
    _ingest(project, str(shared_dir / "samples/feeds/heise_developer_2016-02-01.atom"))
    by_title = {a["title"]: a for a in _articles(project)}
    assert by_title["‘Next Time in Moscow’: Putin Extends Trump Invitation as Summit Ends"]["topics"] == [
        "world", "russia"]
    sotu = by_title["Trump State of the Union address promised unity but emphasized discord"]
    assert sotu["topics"][:2] == ["politics", "donald trump"]  # newsroom topic first, then the feed's categories
    assert all(a["topics"] == ["tech"] for a in by_title.values() if a["outlet"].startswith("heise"))
    assert {a["title"] for a in _articles(project, "--topic", "russia")} >= {
        "‘Next Time in Moscow’: Putin Extends Trump Invitation as Summit Ends"}

    project.write_config('[[topic_rules]]\ntopic = "x"\nkeyword = ["typo"]\n')
    bad = project.run("ingest", str(shared_dir / SEED), ok=False)
    assert bad.exit_code == 2 and "topic_rules[0]: unknown field(s) keyword" in bad.stderr


def test_outlet_names_rename_a_feed_title_before_topic_rules(project: Project, shared_dir: Path) -> None:
    # A feed's title is often a slogan ("heise developer neueste Meldungen"): the newsroom names the outlet, and
    # bylines and topic_rules see that name; ids stay those of the source's own name.
    heise = shared_dir / "samples/feeds/heise_developer_2016-02-01.atom"
    project.write_config('outlet_names = {"HEISE developer  neueste Meldungen" = "heise developer"}\n'
                         '[[topic_rules]]\ntopic = "tech"\noutlets = ["heise developer"]\n')
    code, report = _ingest(project, str(heise))
    assert code == 0
    articles = _articles(project)
    assert len(articles) == 15 and {a["outlet"] for a in articles} == {"heise developer"}
    assert all(a["topics"] == ["tech"] for a in articles)
    original = parse_bytes(heise.read_bytes(), source=str(heise))
    assert sorted(report["sources"][0]["articles"]) == sorted(a.id for a in original.articles)

    project.write_config('outlet_names = {"heise developer neueste Meldungen" = ""}\n')
    bad = project.run("ingest", str(heise), ok=False)
    assert bad.exit_code == 2 and "outlet_names['heise developer neueste Meldungen']" in bad.stderr


def test_json_export_imports_back_identically(project: Project, shared_dir: Path, tmp_path: Path) -> None:
    _ingest(project, str(shared_dir / SEED), "--topic", "world")
    _ingest(project, str(shared_dir / "samples/feeds"), str(SAMPLES / "articles"), str(SAMPLES / "feeds"),
            str(SAMPLES / "articles.json"))
    exported = project.run("articles", "--json").stdout
    articles = json.loads(exported)
    assert len(articles) > 100
    assert {"en", "fr", "de"} <= {a["language"] for a in articles}  # declared by the feed, or detected
    some_id = articles[3]["id"]
    project.run("articles", "pin", some_id)
    exported = project.run("articles", "--json").stdout
    (tmp_path / "export.json").write_text(exported, encoding="utf-8")

    # Into the same store: nothing changes.
    _, same = _ingest(project, "--format", "json", str(tmp_path / "export.json"))
    assert same["totals"] == {"new": 0, "updated": 0, "unchanged": len(articles), "failed": 0}
    assert project.run("articles", "--json").stdout == exported

    # Into a fresh store, as an array and as JSON Lines: the same export comes back out.
    (tmp_path / "export.jsonl").write_text("\n".join(json.dumps(a, ensure_ascii=False) for a in json.loads(exported)),
                                           encoding="utf-8")
    for name in ("export.json", "export.jsonl"):
        fresh = {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / (name + '.db')}"}
        project.run("ingest", "--format", "json", str(tmp_path / name), env=fresh)
        assert project.run("articles", "--json", env=fresh).stdout == exported
    # --format auto recognizes JSON too.
    fresh = {"DIGEST_DATABASE_URL": f"sqlite:///{tmp_path / 'auto.db'}"}
    project.run("ingest", "-", input=exported.encode(), env=fresh)
    assert project.run("articles", "--json", env=fresh).stdout == exported


def test_pin_and_unpin(project: Project, shared_dir: Path) -> None:
    _ingest(project, str(shared_dir / SEED))
    article_id = _articles(project)[0]["id"]
    assert project.json("articles", "pin", article_id) == {"id": article_id, "pinned": True}
    assert _articles(project)[0]["pinned"] is True
    _ingest(project, str(shared_dir / SEED), "--published", "2025-01-01T00:00:00Z")  # an update keeps the pin
    assert _articles(project)[0]["pinned"] is True
    assert "Unpinned" in project.run("articles", "unpin", article_id).stdout
    assert _articles(project)[0]["pinned"] is False
    missing = project.run("articles", "pin", "no-such-id", ok=False)
    assert missing.exit_code == 1 and "no article with id 'no-such-id'" in missing.stderr


def test_articles_since_and_table(project: Project) -> None:
    _ingest(project, str(SAMPLES / "articles.json"))
    # The undated record is dated when first ingested (now), so it is the newest.
    assert [a["id"] for a in _articles(project, "--since", "2025-08-18T10:00:00Z")] == [
        "sample-gazette-budget", "sample-clinic-hours"]
    assert len(_articles(project, "--since", "2025-08-18")) == 3
    assert [a["id"] for a in _articles(project, "--since", "2025-08-19")] == ["sample-gazette-budget"]
    table = project.run("articles", env={"COLUMNS": "200"}).stdout
    assert "Eastfield Clinic Extends Evening Hours" in table and "3*" in table  # derived Quick Looks marked


# --- feed URLs, from a real HTTP server on loopback -----------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: ClassVar[dict[str, tuple[int, str, bytes, float]]] = {}

    def do_GET(self) -> None:
        status, kind, body, delay = self.routes.get(self.path, (404, "text/plain", b"not found", 0.0))
        if delay:
            time.sleep(delay)
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def feed_server(shared_dir: Path) -> Iterator[str]:
    relative = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback Gazette (fictional)</title>'
                b"<item><title>A Story With a Relative Link</title><link>stories/1.html</link>"
                b"<pubDate>Sun, 11 Feb 2018 10:00:00 GMT</pubDate><description>Its only paragraph is here."
                b"</description></item></channel></rss>")
    _Handler.routes = {
        "/guardian.rss": (200, "application/rss+xml; charset=utf-8",
                          (shared_dir / "samples/feeds/guardian_us_2018-01-31.rss").read_bytes(), 0.0),
        "/news/feed.xml": (200, "application/xml", relative, 0.0),
        "/moved": (302, "text/plain", b"", 0.0),
        "/slow.rss": (200, "application/rss+xml", relative, 2.0),
    }
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"

    class Redirect(_Handler):
        def do_GET(self) -> None:
            if self.path == "/moved":
                self.send_response(302)
                self.send_header("Location", f"{base}/news/feed.xml")
                self.end_headers()
                return
            super().do_GET()

    server.RequestHandlerClass = Redirect
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    server.server_close()


def test_feed_urls_over_http(project: Project, feed_server: str) -> None:
    code, report = _ingest(project, f"{feed_server}/guardian.rss", f"{feed_server}/moved",
                           f"{feed_server}/missing.rss", ok=False)
    assert code == 1
    guardian, moved, missing = report["sources"]
    assert guardian["status"] == "ok" and guardian["new"] == 55 and guardian["format"] == "feed"
    assert moved["status"] == "ok" and moved["new"] == 1
    assert missing["status"] == "failed" and missing["error"] == f"{feed_server}/missing.rss: HTTP 404 Not Found"
    by_title = {a["title"]: a for a in _articles(project)}
    # Relative links resolve against where the feed was finally fetched from (after the redirect).
    assert by_title["A Story With a Relative Link"]["url"] == f"{feed_server}/news/stories/1.html"
    assert by_title["A Story With a Relative Link"]["source"] == f"{feed_server}/moved"

    code, slow = _ingest(project, f"{feed_server}/slow.rss", ok=False, env={"DIGEST_FEED_TIMEOUT": "0.3"})
    assert code == 1 and slow["sources"][0]["error"] == f"{feed_server}/slow.rss: no answer within 0.3 s (feed_timeout)"


# --- anything at all on standard input ------------------------------------------------------------------


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=400).map(lambda t: t.encode("utf-8"))),
       fmt=st.sampled_from(["auto", "newslooks", "feed", "json"]))
def test_ingest_command_never_crashes_on_any_input(sqlite_project: Project, data: bytes, fmt: str) -> None:
    result = sqlite_project.run("ingest", "--format", fmt, "--json", "-", input=data, ok=False)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    source = report["sources"][0]
    if result.exit_code == 1:
        assert source["status"] == "failed" and source["error"].startswith("<stdin>")
    else:
        assert source["status"] == "ok"


# --- two ingests of the same new article at once ----------------------------------------------------------


def test_two_ingests_of_the_same_new_article_at_once(store: Store, tmp_path: Path) -> None:
    """The second ingest looks, finds nothing, and inserts while the first has not committed yet: on PostgreSQL
    its insert then collides with the first one's; it must find the article and report it, not fail."""
    text = ("Ferry Timetable Changes for Winter/ Fictional Gazette/ PORT ALDER/ A. Example/ Morning Edition/ "
            "The harbour council added two late ferries on weekdays.\n- Two late ferries on weekdays.\n")
    path = tmp_path / "ferry.txt"
    path.write_text(text, encoding="utf-8")
    [article] = parse_bytes(text.encode(), source=str(path)).articles
    article.published_at = datetime(2031, 3, 4, 6, 0, tzinfo=UTC)

    results: list[Any] = []
    with store.session() as first:
        assert upsert_article(first, article) == "new"
        first.flush()  # the row exists, uncommitted: the other ingest cannot see it yet
        other = threading.Thread(target=lambda: results.append(
            ingest_sources(store, [str(path)], published=datetime(2031, 3, 4, 6, 0, tzinfo=UTC))))
        other.start()
        time.sleep(0.5)  # let it look and reach its insert
    other.join(timeout=30)
    [report] = results
    [source] = report.sources
    assert source.status == "ok", source.error
    assert source.new == 0 and source.updated + source.unchanged == 1
    with store.session() as s:
        assert s.scalar(select(func.count()).select_from(ArticleRow)) == 1
