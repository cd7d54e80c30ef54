"""One notion of a live blog: ingest derives no Quick Looks from one, rank leaves out a stale one."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.ingest.liveblog import is_live_blog
from digest.ingest.quicklooks import derive_quick_looks
from digest.models import Article
from digest.rank import stale

BODY = ["The harbour authority approved the new ferry terminal on Tuesday after a four-hour hearing.",
        "Construction of the terminal will begin in March and is expected to last two years.",
        "The project is funded by a state grant of $38 million and a local bond issue."]


@pytest.mark.parametrize("title, url", [
    ("Election night 2026 – live!", None), ("Transfer deadline day: as it happened", None),
    ("Elections régionales : suivez la soirée en direct", None), ("Bundestag: Der Liveticker zur Wahl", None),
    ("Eleições: acompanhe a apuração ao vivo", None), ("Serie A, la giornata in diretta", None),
    ("Storm updates", "https://news.example.org/live/2026/dec/02/storm"),
])
def test_a_live_blog_is_one_for_ingest_and_rank_alike(title: str, url: str | None) -> None:
    article = Article(id="a1", title=title, url=url, published_at=datetime(2026, 12, 2, tzinfo=UTC))
    assert is_live_blog(title, url) and stale.is_live_blog(article)
    if url is None:  # the title alone says so: no Quick Looks from its moments
        assert derive_quick_looks(title, None, BODY, language="en") == []


def test_an_ordinary_story_is_not_a_live_blog() -> None:
    title = "Harbour authority approves new ferry terminal"
    article = Article(id="a2", title=title, url="https://news.example.org/2026/12/02/ferry")
    assert not is_live_blog(article.title, article.url) and not stale.is_live_blog(article)
    assert len(derive_quick_looks(title, None, BODY, language="en")) >= 2
