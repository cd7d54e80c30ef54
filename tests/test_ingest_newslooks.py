"""The Newslooks text parser: the real seed article field by field, the shape rules, and bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.errors import ParseError
from digest.ingest.newslooks import looks_like_heading, parse_newslooks, parse_newslooks_bytes
from digest.ingest.pipeline import finish, parse_bytes

from .conftest import REPO

SEED = "samples/newslooks/next-time-in-moscow.txt"


def test_seed_article_parses_to_exactly_its_parts(shared_dir: Path) -> None:
    path = shared_dir / SEED
    article = parse_newslooks_bytes(path.read_bytes(), source=str(path))
    assert article.title == "‘Next Time in Moscow’: Putin Extends Trump Invitation as Summit Ends"
    assert article.outlet == "Newslooks"
    assert article.dateline == "WASHINGTON"
    assert article.author == "J. Mansour"
    assert article.edition == "Morning Edition"
    assert article.summary is not None
    assert article.summary.startswith("As their Alaska summit concluded without a Ukraine ceasefire deal,")
    assert article.summary.endswith("amid ongoing isolation over the war.")
    assert article.published_at is None and article.url is None
    assert article.source == str(path)

    assert article.quick_looks_title == "Trump Putin Moscow Invitation Quick Looks"
    assert len(article.quick_looks) == 8
    assert article.quick_looks[0] == "Putin ended Alaska summit with invitation: “Next time in Moscow.”"
    assert article.quick_looks[1] == "Remark delivered in English, unusual for Putin in public."
    assert article.quick_looks[-1] == "This was Putin’s first U.S. visit since 2021."
    assert article.quick_looks_derived is False

    assert article.deep_look_title == "Putin Invites Trump to Moscow After Inconclusive Alaska Summit"
    assert [s.heading for s in article.sections] == [
        None, "Symbolism of a Potential Moscow Visit", "A Summit Without Breakthroughs", "The Larger Context",
        "The Road Ahead"]
    assert [len(s.paragraphs) for s in article.sections] == [2, 2, 3, 3, 2]
    assert article.sections[0].paragraphs[0].startswith("ANCHORAGE, Alaska — At the close of their Alaska summit")
    assert article.sections[-1].paragraphs[-1].endswith("a war that continues to rage across Ukraine.")
    everything = " ".join([article.summary, *article.quick_looks, *(p for s in article.sections for p in s.paragraphs)])
    assert "Register or Login" not in everything and "post a comment" not in everything


def test_seed_article_gets_the_same_id_every_time(shared_dir: Path) -> None:
    data = (shared_dir / SEED).read_bytes()
    assert parse_newslooks_bytes(data, source="a").id == parse_newslooks_bytes(data, source="b").id


ARTICLE = """Harbor Opens New Pier/ Sample Desk/ PORT ALDER/ A. Writer/ Morning Edition/ The harbor opened a pier.

Harbor Quick Looks
- First bullet here.
• Second bullet here.
* Third bullet here.
– Fourth bullet here.
Deep Look: The Pier Opens at Last
PORT ALDER — The opening paragraph of the body, which is long enough to be a paragraph.
A second opening paragraph that ends with a full stop.
Why It Matters
The pier doubles the harbor's capacity, officials said.
Share this article
Facebook Twitter Email
You must Register or Login to post a comment.
A comment from a reader that must never be stored.
"""


def test_shape_rules_bullets_headings_and_junk() -> None:
    article = parse_newslooks(ARTICLE, source="pier.txt")
    assert article.quick_looks == ["First bullet here.", "Second bullet here.", "Third bullet here.",
                                   "Fourth bullet here."]
    assert article.quick_looks_title == "Harbor Quick Looks"
    assert article.deep_look_title == "The Pier Opens at Last"
    assert [(s.heading, len(s.paragraphs)) for s in article.sections] == [(None, 2), ("Why It Matters", 1)]
    stored = " ".join(p for s in article.sections for p in s.paragraphs)
    assert "Share" not in stored and "Facebook" not in stored and "reader" not in stored


def test_articles_without_quick_looks_or_deep_look_still_parse() -> None:
    text = ("A Headline With No Extras/ Sample Desk/ EASTFIELD/ / / The lede sentence of the story.\n"
            "The only paragraph of the body, with its full stop.\n")
    article = parse_newslooks(text, source="bare.txt")
    assert article.quick_looks == [] and article.quick_looks_title is None and article.deep_look_title is None
    assert article.author is None and article.edition is None
    assert article.sections[0].heading is None
    assert article.sections[0].paragraphs == ["The only paragraph of the body, with its full stop."]
    assert article.language == "en"  # Newslooks is English
    finished = finish(article, published=None, topics=(), rules=())
    # One body sentence is too little for Quick Looks (the lede is never one): none, and not flagged derived.
    assert finished.quick_looks == [] and finished.quick_looks_derived is False
    longer = parse_newslooks(
        "Harbor Ferry Returns/ Sample Desk/ PORT ALDER/ / / The ferry runs again from Monday.\n"
        "The council voted 7–2 on Tuesday to restart the Gull Island ferry after two years of repairs.\n"
        "The new vessel, built by Marlow Yards in Everett, carries 140 passengers and 22 cars.\n", source="f.txt")
    derived = finish(longer, published=None, topics=(), rules=())
    assert derived.quick_looks_derived is True
    assert derived.quick_looks == longer.sections[0].paragraphs  # whole sentences of the body, in its order

    header_only = parse_newslooks("Title Only/ Desk/ CITY/ Author/ Edition/ Just the lede.", source="h.txt")
    assert header_only.sections == [] and header_only.summary == "Just the lede."

    bullets_without_title = parse_newslooks(
        "T/ Desk/ CITY/ Au/ Ed/ Lede.\n\n- One point made here.\n- Another point made here.\nBody text here.\n",
        source="b.txt")
    assert bullets_without_title.quick_looks == ["One point made here.", "Another point made here."]
    assert bullets_without_title.quick_looks_title is None


@pytest.mark.parametrize(("text", "line", "reason"), [
    ("", 1, "empty"),
    ("\n\n   \n", 1, "empty"),
    ("Just a sentence of prose, not an article.\nAnother line.\n", 1, "found 1 of 6 fields"),
    ("\n\nTitle/ Outlet/ CITY/ Author/ Edition\nbody\n", 3, "found 5 of 6 fields"),
    ('<?xml version="1.0"?><rss></rss>', 1, "looks like XML, HTML or JSON"),
    ('[{"title": "x"}]', 1, "looks like XML, HTML or JSON"),
    ("/ Outlet/ CITY/ Author/ Edition/ lede", 1, "title field is empty"),
    ("Title/ / CITY/ Author/ Edition/ lede", 1, "outlet field is empty"),
    ("Title/ Outlet/ " + "X" * 250 + "/ Author/ Edition/ lede", 1, "dateline field is 250 characters"),
])
def test_text_that_is_not_newslooks_names_file_and_line(text: str, line: int, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_newslooks(text, source="notes.txt")
    assert caught.value.source == "notes.txt" and caught.value.line == line
    assert reason in str(caught.value)
    assert str(caught.value).startswith(f"notes.txt:{line}: ")


def test_bytes_that_are_not_utf8_name_the_line() -> None:
    with pytest.raises(ParseError, match=r"^old.txt:2: not UTF-8 text \(byte 0xe9 at column 4\)"):
        parse_newslooks_bytes(b"T/ O/ C/ A/ E/ lede\ncaf\xe9\n", source="old.txt")
    with pytest.raises(ParseError, match=r"^bin.txt:1: binary data"):
        parse_newslooks_bytes(b"T/ O/ C/ A/ E/ le\x00de", source="bin.txt")
    # A byte-order mark and Windows line ends are fine.
    article = parse_newslooks_bytes("\ufeffT/ O/ C/ A/ E/ lede\r\n- A bullet point.\r\n".encode(), source="w.txt")
    assert article.title == "T" and article.quick_looks == ["A bullet point."]


@pytest.mark.parametrize(("line", "expected"), [
    ("Symbolism of a Potential Moscow Visit", True),
    ("The Road Ahead", True),
    ("What Comes Next", True),
    ("Who Rides, Who Pays", True),
    ("The Men’s Race", True),
    ("A Summit Without Breakthroughs.", False),  # terminal punctuation
    ("ANCHORAGE, Alaska — At the close of their Alaska summit, Russian President Vladimir Putin surprised", False),
    ("the road ahead", False),  # not title case
    ("Trump said he would go", False),  # a sentence fragment, mostly lower case
    ("One Two Three Four Five Six Seven Eight Nine Ten Eleven Twelve Thirteen", False),  # too long
])
def test_subheading_detection(line: str, expected: bool) -> None:
    assert looks_like_heading(line) is expected


def test_a_heading_shaped_line_needs_a_paragraph_after_it() -> None:
    text = ("T/ O/ C/ A/ E/ Lede.\nFirst paragraph of the body.\nTwo Headings In\nA Row Here\n"
            "A paragraph after them.\nTrending Now\n")
    article = parse_newslooks(text, source="x")
    assert [s.heading for s in article.sections] == [None, "A Row Here"]
    assert article.sections[0].paragraphs == ["First paragraph of the body.", "Two Headings In"]
    assert article.sections[1].paragraphs == ["A paragraph after them."]  # "Trending Now" is site furniture


def test_the_projects_samples_are_newslooks_articles_across_topics() -> None:
    files = sorted((REPO / "samples" / "articles").glob("*/*.txt"))
    assert len(files) >= 8
    assert len({f.parent.name for f in files}) >= 4
    for path in files:
        article = parse_newslooks_bytes(path.read_bytes(), source=str(path))
        assert article.outlet == "Newslooks Sample Desk", path  # the fictional outlet marks them as samples
        assert article.summary and article.sections, path
    readme = (REPO / "samples" / "README.md").read_text(encoding="utf-8")
    assert "fictional" in readme.lower()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_parser_raises_only_parse_error_on_any_text(text: str) -> None:
    try:
        article = parse_newslooks(text, source="fuzz.txt")
    except ParseError as exc:
        assert exc.source == "fuzz.txt"
    else:
        assert article.title and article.outlet and article.summary


_field = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
_line = st.one_of(_field, _field.map(lambda t: "- " + t), _field.map(lambda t: "Deep Look: " + t),
                  _field.map(lambda t: t + " Quick Looks"), st.sampled_from(["The Road Ahead", "", "Comments"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_field, min_size=6, max_size=7), st.lists(_line, max_size=12))
def test_parser_raises_only_parse_error_on_near_newslooks_text(header: list[str], lines: list[str]) -> None:
    text = "/ ".join(header) + "\n" + "\n".join(lines)
    try:
        article = parse_newslooks(text, source="near.txt")
    except ParseError:
        return
    assert all(p.strip() for s in article.sections for p in s.paragraphs)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(), st.sampled_from(["auto", "newslooks", "feed", "json"]))
def test_every_parser_raises_only_parse_error_on_any_bytes(data: bytes, fmt: str) -> None:
    try:
        parse_bytes(data, source="fuzz.bin", fmt=fmt)
    except ParseError:
        pass
