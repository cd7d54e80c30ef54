"""Plain values passed between pipeline stages (ingest → rank → render → send).

Store rows live in ``digest.store.tables``; these dataclasses are what the pure stages produce and consume, so
ingest, rank and render never need a database session.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

SUBSCRIBER_STATUSES = ("pending", "active", "unsubscribed", "bounced", "complained")
# The longest value of each bounded Article field, which every reader enforces (Newslooks and JSON reject, feeds
# cut). All but the title are the String(n) sizes of store.tables.ArticleRow, which a test keeps in step; the
# title's column is unbounded, and 300 is a headline's sensible length.
ARTICLE_LIMITS = {"id": 64, "title": 300, "outlet": 200, "author": 300, "dateline": 200, "edition": 200,
                  "language": 16}


@dataclass
class Section:
    heading: str | None
    paragraphs: list[str]


@dataclass
class Article:
    id: str
    title: str
    outlet: str | None = None
    author: str | None = None
    dateline: str | None = None
    edition: str | None = None
    published_at: datetime | None = None
    url: str | None = None
    language: str | None = None  # BCP 47 primary tag ("en", "fr"); None when unknown
    topics: list[str] = field(default_factory=list)
    summary: str | None = None
    quick_looks: list[str] = field(default_factory=list)
    quick_looks_title: str | None = None
    quick_looks_derived: bool = False
    deep_look_title: str | None = None
    sections: list[Section] = field(default_factory=list)
    image_url: str | None = None
    image_alt: str | None = None
    # The lead image's size in pixels when the source gives it: the email never shows an image larger than it is.
    image_width: int | None = None
    image_height: int | None = None
    source: str | None = None
    pinned: bool = False

    @property
    def body_text(self) -> str:
        return "\n\n".join(p for s in self.sections for p in s.paragraphs)

    def to_json(self) -> dict[str, Any]:
        """The shape `digest articles --json` prints and `digest ingest --format json` reads back
        (through ``digest.ingest.jsonl``, which checks every field)."""
        data = asdict(self)
        data["published_at"] = self.published_at.astimezone(UTC).isoformat() if self.published_at else None
        return data

    def content_hash(self) -> str:
        """Hash of what the article says, to tell `updated` from `unchanged` on re-ingest."""
        data = self.to_json()
        data.pop("source", None)
        data.pop("pinned", None)
        return hashlib.sha256(repr(sorted(data.items())).encode()).hexdigest()


def article_id(url: str | None, outlet: str | None, title: str, published: datetime | None = None) -> str:
    """Stable id: the canonical URL when there is one, else outlet + title (+ the source's own date)."""
    if url:
        basis = "url:" + url.strip()
    else:
        basis = "t:" + (outlet or "").strip().lower() + "|" + " ".join(title.split()).lower()
        if published is not None:
            basis += "|" + published.astimezone(UTC).date().isoformat()
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()[:16]


@dataclass
class AlsoCovered:
    """Another outlet's version of a story that was collapsed into a kept article."""

    id: str
    title: str
    outlet: str | None
    url: str | None


@dataclass
class RankedItem:
    article: Article
    score: float
    components: dict[str, float] = field(default_factory=dict)
    also_covered_by: list[AlsoCovered] = field(default_factory=list)


@dataclass
class Dropped:
    id: str
    reason: str  # "duplicate of <id>", "already sent as <id>", "outside the window", "already sent", "topic cap",
    #              "below the limit"


@dataclass
class Selection:
    """What one variant of an edition shows, in order. ``key`` identifies the variant."""

    items: list[RankedItem]
    dropped: list[Dropped] = field(default_factory=list)
    list_name: str | None = None
    edition_date: Any = None  # datetime.date
    window_start: datetime | None = None
    cutoff_at: datetime | None = None
    thin: bool = False  # fewer than min_articles
    note: str | None = None  # the edition's editor's note (Markdown subset), set with the edition by stamp()
    # The readers' language (a supported tag): the same articles in two languages are two variants. None: the
    # caller does not say (a one-off build), and the key is the articles' alone.
    language: str | None = None

    @property
    def article_ids(self) -> list[str]:
        return [item.article.id for item in self.items]

    @property
    def key(self) -> str:
        return variant_key(self.article_ids, self.language)


def variant_key(article_ids: list[str], language: str | None = None) -> str:
    basis = "\n".join(article_ids) + (f"\nlanguage:{language}" if language else "")
    return hashlib.sha256(basis.encode()).hexdigest()[:32]
