"""Fictional articles, lists and readers for the render tests (invented for this project; not real news)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from digest.config import Settings, load_settings
from digest.models import AlsoCovered, Article, RankedItem, Section, Selection
from digest.render.personalize import Recipient
from digest.store.tables import MailingListRow

EDITION_DATE = date(2031, 3, 4)
EVIL_TITLE = 'Mayor\'s "plan" <script>alert("pwned")</script> & more'


def settings(tmp_path: Path, **values: Any) -> Settings:
    """Settings of an empty project folder (built-in templates), with ``values`` overriding."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    base = load_settings(cwd=project, environ={})
    return base.replace(**values) if values else base


def list_row(**overrides: Any) -> MailingListRow:
    values: dict[str, Any] = {"id": 7, "name": "daily", "title": None, "from_name": "The Springfield Ledger",
                              "from_email": "news@ledger.example.org", "reply_to": "desk@ledger.example.org",
                              "timezone": "Europe/Berlin"}
    values.update(overrides)
    return MailingListRow(**values)


STORIES = [
    "River district council approves new footbridge",
    "Harbour ferry adds a late crossing on weekends",
    "Library opens a repair cafe for old radios",
    "Orchard growers report an early cherry harvest",
    "School board delays vote on longer lunch break",
    "Night market returns to the old tram depot",
    "Volunteer crew restores the lighthouse lamp",
    "Cycling club maps a new route along the canal",
]

TOPICS = ["politics", "transport", "culture", "business", "schools", "local", "science", "sports"]
LEDES = [
    "The council voted 7 to 2 on Monday night to fund a footbridge linking the river district with the market.",
    "Ferries will run until midnight on Fridays and Saturdays from May, the harbour office said.",
    "Every second Saturday, volunteers will help residents fix radios, lamps and toasters for free.",
    "Warm spring weather means the first cherries reach stalls two weeks sooner than usual.",
    "Parents asked for a longer break; the board wants another month to study the timetable.",
    "Forty stalls selling food and crafts will fill the depot every Thursday evening this summer.",
    "A team of retired engineers spent the winter rebuilding the lamp's rotating mechanism.",
    "The new signed route follows the towpath for twelve kilometres between two villages.",
]


def article(i: int, **overrides: Any) -> Article:
    title = STORIES[i - 1] if 1 <= i <= len(STORIES) else f"Story number {i} from the fictional valley"
    values: dict[str, Any] = {
        "id": f"art{i:03d}",
        "title": title,
        "outlet": "Springfield Ledger" if i % 2 else "Valley Courier",
        "author": "Dana Example",
        "dateline": "SPRINGFIELD",
        "published_at": datetime(2031, 3, 4, 5, 15, tzinfo=UTC),
        "url": f"https://ledger.example.org/news/footbridge-{i}?src=rss",
        "topics": [TOPICS[(i - 1) % len(TOPICS)]],
        "summary": LEDES[i - 1] if 1 <= i <= len(LEDES) else f"Lede of story {i}, written for the size tests.",
        "quick_looks": [f"{title} after years of planning." if i != 1 else
                     "The bridge will cost about 4 million in city funds.",
                     f"Story {i}: construction or changes begin in the autumn.",
                     f"Residents of district {i} were consulted twice."],
        "quick_looks_title": "Quick Looks",
        "deep_look_title": "How the vote came together",
        "sections": [Section(None, [f"{title}. Full article text of story {i} would follow here."])],
        "image_url": f"https://ledger.example.org/img/bridge-{i}.jpg" if i == 1 else None,
        "image_alt": "Artist's drawing of the planned footbridge" if i == 1 else None,
    }
    values.update(overrides)
    return Article(**values)


def selection(n: int = 5, **overrides: Any) -> Selection:
    items = []
    for i in range(1, n + 1):
        also = [AlsoCovered("other1", "Footbridge gets green light", "Valley Courier",
                            "https://courier.example.org/bridge")] if i == 2 else []
        items.append(RankedItem(article(i, **overrides), score=10.0 - i, also_covered_by=also))
    return Selection(items=items, list_name="daily", edition_date=EDITION_DATE)


def recipient(**overrides: Any) -> Recipient:
    values: dict[str, Any] = {"email": "pat@readers.example.org", "name": "Pat Reader", "subscriber_id": 42,
                              "unsubscribe_url": "https://news.example.org/unsubscribe/tok.en-1_x",
                              "preferences_url": "https://news.example.org/preferences/tok.en-2_y?a=1&b=2"}
    values.update(overrides)
    return Recipient(**values)
