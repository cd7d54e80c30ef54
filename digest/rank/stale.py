"""Live blogs that are not news any more.

A live blog keeps its URL and is updated all day, and feeds often date it by its last update, so one that
started days ago can arrive dated inside today's window. Its URL usually carries the day it started
(``/live/2018/jan/31/``); a live blog that started before the edition's window is yesterday's coverage, not
news. What counts as a live blog is `digest.ingest.liveblog`'s answer, the one ingest uses too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

from digest.ingest import liveblog
from digest.models import Article

_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                       "nov", "dec"), start=1)}
_URL_DATE = re.compile(r"/((?:19|20)\d{2})[/-]([a-z]{3}|\d{1,2})[/-](\d{1,2})(?=[/_-])", re.IGNORECASE)


def is_live_blog(article: Article) -> bool:
    return liveblog.is_live_blog(article.title, article.url)


def started_on(article: Article) -> date | None:
    """The day a live blog started, from the date in its URL, if there is one."""
    match = _URL_DATE.search(article.url or "")
    if not match:
        return None
    year, month, day = match.groups()
    number = _MONTHS.get(month.lower()) if month.isalpha() else int(month)
    try:
        return date(int(year), number, int(day)) if number else None
    except ValueError:
        return None


def stale_live_blog(article: Article, window_start: datetime) -> bool:
    """A live blog that started (its URL's date, else its publication) before ``window_start``."""
    if not is_live_blog(article):
        return False
    started = started_on(article)
    if started is not None:
        # The URL gives a day, not a time: the blog is stale only if that whole day is before the window.
        day_end = datetime(started.year, started.month, started.day, tzinfo=UTC) + timedelta(days=1)
        return day_end <= window_start
    return article.published_at is not None and article.published_at < window_start
