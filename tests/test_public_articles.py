"""The hosted Deep Look page on `digest serve`, for articles that came without a page of their own."""

from __future__ import annotations

from datetime import UTC, datetime

from bs4 import BeautifulSoup
from sqlalchemy import select

from digest.store.tables import ArticleRow
from digest.web.public import create_app

from .audience_support import Web
from .conftest import REPO, Project


def test_an_article_without_a_url_is_readable_on_serve_and_escaped(project: Project) -> None:
    project.run("ingest", str(REPO / "samples" / "articles" / "politics"), "--topic", "politics")
    evil = project.root / "evil.txt"
    evil.write_text(
        "A <script>alert(1)</script> headline/ Sample Desk/ SPRINGFIELD/ A. Writer/ Morning Edition/ "
        "A lede with <b>markup</b> that must stay text.\n\nSample Quick Looks\n- One <img src=x onerror=alert(1)>\n"
        "Deep Look: The long read\nSPRINGFIELD — A paragraph of the fictional body.\n", encoding="utf-8")
    project.run("ingest", str(evil), "--published", "2026-01-05T06:00:00+00:00")
    app = project.app()
    web = Web(create_app(app))
    try:
        with app.store.session() as s:
            rows = s.scalars(select(ArticleRow).where(ArticleRow.url.is_(None))).all()
            assert rows, "the Newslooks samples come without URLs"
            evil_id = next(r.id for r in rows if "script" in r.title)
            sample = next(r for r in rows if "script" not in r.title)
            sample_id, sample_title, sample_sections = sample.id, sample.title, sample.sections
        page = web.get(f"/articles/{sample_id}")
        assert page.status_code == 200
        soup = BeautifulSoup(page.text, "lxml")
        assert soup.h1 is not None and soup.h1.get_text() == sample_title
        body = soup.select_one("#deep-look")
        assert body is not None and page.headers["x-frame-options"] == "DENY"
        assert sample_sections[0]["paragraphs"][0] in soup.get_text()

        hostile = web.get(f"/articles/{evil_id}")
        assert hostile.status_code == 200
        assert "<script>alert(1)</script>" not in hostile.text and "&lt;script&gt;" in hostile.text
        assert "<img src=x" not in hostile.text

        assert web.get("/articles/0000000000000000").status_code == 404
        with app.store.session() as s:
            row = s.get(ArticleRow, sample_id)
            assert row is not None
            row.retracted_at = datetime.now(UTC)
        assert web.get(f"/articles/{sample_id}").status_code == 410
    finally:
        web.close()
        app.close()


def test_hosted_links_round_trip_any_id() -> None:
    from digest.hosted import article_id_from, article_url

    for article_id in ("0123456789abcdef", "desk/2026 budget", "é?#&"):
        url = article_url("https://news.example.org/", article_id)
        assert url.startswith("https://news.example.org/articles/") and " " not in url
        assert article_id_from(url + "?utm_source=digest") == article_id
    assert article_id_from("https://news.example.org/unsubscribe/abc") is None
    assert article_id_from("https://news.example.org/articles/") is None
