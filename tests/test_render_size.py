"""The size guard: editions stay under max_html_bytes by trimming content, never markup, and say so."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from digest.render import size
from digest.render.edition import render_selection
from digest.render.personalize import personalize
from tests.render_helpers import EDITION_DATE, list_row, recipient, selection, settings

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Balance(HTMLParser):
    """Fails on any end tag that does not close the innermost open element: cut markup cannot pass."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        pass

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            return
        self.stack.pop()


def assert_well_formed(html: str) -> None:
    parser = _Balance()
    parser.feed(html)
    parser.close()
    assert parser.errors == [] and parser.stack == [], (parser.errors[:5], parser.stack[-5:])
    assert html.rstrip().endswith("</html>")


LONG_LEDE = " ".join(["Residents packed the hall to hear the council debate the footbridge budget."] * 12)
MANY_POINTS = [" ".join([f"Point {n}: the committee reviewed the figures again and again."] * 4) for n in range(8)]


def test_huge_edition_is_trimmed_below_limit_and_reported(tmp_path: Path) -> None:
    sel = selection(60, summary=LONG_LEDE, quick_looks=MANY_POINTS)
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, sel)
    assert rendered.size_bytes < 102_000
    assert 1 <= rendered.article_count < 60
    assert rendered.trimmed[0].startswith("shortened teasers")
    dropped = [t for t in rendered.trimmed if t.startswith("dropped")]
    assert len(dropped) == 60 - rendered.article_count
    # Lowest-ranked first out: the kept articles are exactly the top ones.
    assert list(rendered.article_ids) == [f"art{i:03d}" for i in range(1, rendered.article_count + 1)]
    assert f"#{rendered.article_count + 1} " in dropped[0] and dropped[-1].startswith("dropped #60 ")
    assert_well_formed(rendered.html)
    assert len(re.findall(r'class="headline(?: lead)?"', rendered.html)) == rendered.article_count
    assert "Example Newsroom, 1 Sample Street" in rendered.html  # the footer survived
    # Still under the limit once a reader with the longest possible values is put in.
    worst = recipient(name='"' * 300, email="a" * 64 + "@" + "b" * 200 + ".example.org")
    _, html, _ = personalize(rendered, worst)
    assert len(html.encode("utf-8")) < 102_000


def test_moderately_large_edition_only_shortens_teasers(tmp_path: Path) -> None:
    sel = selection(8, summary=LONG_LEDE, quick_looks=MANY_POINTS)
    full = render_selection(settings(tmp_path, max_html_bytes=10_000_000), list_row(), EDITION_DATE, sel)
    assert full.trimmed == [] and full.teaser_level == 0
    limit = full.size_bytes - 3000
    rendered = render_selection(settings(tmp_path, max_html_bytes=limit), list_row(), EDITION_DATE, sel)
    assert rendered.article_count == 8
    assert rendered.teaser_level >= 1
    assert len(rendered.trimmed) == 1 and "ledes cut to" in rendered.trimmed[0]
    assert rendered.size_bytes + size.personalization_reserve(rendered.html, "http://127.0.0.1:8040") < limit
    assert_well_formed(rendered.html)
    assert "…" in rendered.html


def test_small_edition_is_untouched(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(3))
    assert rendered.trimmed == [] and rendered.teaser_level == 0 and rendered.article_count == 3
    assert_well_formed(rendered.html)


def test_fit_prefers_teasers_then_drops_from_the_bottom() -> None:
    calls: list[tuple[int, int]] = []

    def render(count: int, level: int) -> int:
        calls.append((count, level))
        return 1000 + count * (100 - 20 * level)  # bytes

    got = size.fit(render, lambda n: n, count=10, levels=3, limit=1700)
    assert (got.count, got.level) == (10, 2) and got.size == 1600
    got = size.fit(render, lambda n: n, count=10, levels=3, limit=1500)
    assert (got.count, got.level) == (8, 2) and got.size == 1480
    with pytest.raises(size.TooLarge, match="max_html_bytes"):
        size.fit(render, lambda n: n, count=10, levels=3, limit=1000)


def test_edition_that_cannot_fit_raises(tmp_path: Path) -> None:
    with pytest.raises(size.TooLarge):
        render_selection(settings(tmp_path, max_html_bytes=5000), list_row(), EDITION_DATE, selection(2))
