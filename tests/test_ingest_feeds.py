"""Feeds through feedparser: the four real feeds field by field, localized dates, messy feeds, images, cleaning."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.errors import ParseError
from digest.ingest.clean import clean_html
from digest.ingest.dates import parse_date
from digest.ingest.feeds import ParsedFeed, parse_feed
from digest.ingest.pipeline import finish
from digest.ingest.quicklooks import MAX_BULLETS
from digest.models import Article, article_id

FEEDS = "samples/feeds"
# Markup, entities or the web page's furniture: none of it may reach a summary or a paragraph.
JUNK = re.compile(r"<[a-zA-Z/!]|&[a-zA-Z]+;|&#\d+;|Continue reading|Related:|Read more|Share on", re.IGNORECASE)


def _feed(shared_dir: Path, name: str) -> ParsedFeed:
    path = shared_dir / FEEDS / name
    return parse_feed(path.read_bytes(), source=str(path))


def _utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def _all_text(article: Article) -> str:
    return " ".join([article.title, article.summary or "", *(p for s in article.sections for p in s.paragraphs)])


def _common_checks(feed: ParsedFeed) -> None:
    assert feed.warnings == []
    assert len({a.id for a in feed.articles}) == len(feed.articles)
    for article in feed.articles:
        assert article.title and article.summary, article
        assert article.url and article.url.startswith(("http://", "https://")), article.url
        assert article.published_at is not None and article.published_at.tzinfo is not None
        assert not JUNK.search(_all_text(article)), (article.title, _all_text(article)[:300])
        assert article.image_url is None or article.image_url.startswith(("http://", "https://"))


def _feed_only_fields(article: Article, path: str) -> None:
    """The fields a feed item never fills (they are the Newslooks shape's), its id and its source, and the Quick
    Looks it ends up with once ingested."""
    assert article.id == article_id(article.url, article.outlet, article.title, article.published_at)
    assert article.source is not None and article.source.endswith(path)
    assert (article.dateline, article.edition, article.quick_looks_title, article.deep_look_title) == (None,) * 4
    assert article.quick_looks == [] and article.quick_looks_derived is False and article.pinned is False
    finished = finish(article, published=None, topics=(), rules=())
    # Derived from its own body, two to five of them, or none when the body has too little (test_ingest_quicklooks).
    assert finished.quick_looks_derived is bool(finished.quick_looks)
    assert finished.quick_looks == [] or 2 <= len(finished.quick_looks) <= MAX_BULLETS
    assert all(bullet in " ".join(finished.body_text.split()) for bullet in finished.quick_looks)


def test_guardian_rss(shared_dir: Path) -> None:
    raw = (shared_dir / FEEDS / "guardian_us_2018-01-31.rss").read_text(encoding="utf-8")
    assert "Continue reading..." in raw and "Related: " in raw  # the junk is there to be dropped
    feed = _feed(shared_dir, "guardian_us_2018-01-31.rss")
    _common_checks(feed)
    assert feed.title == "The Guardian" and len(feed.articles) == 55
    first = feed.articles[0]
    assert first.title == "Trump State of the Union address promised unity but emphasized discord"
    assert first.url == ("https://www.theguardian.com/us-news/2018/jan/31/"
                         "donald-trump-state-of-the-union-address-unity-discord")
    assert first.published_at == _utc(2018, 1, 31, 7, 26, 5)
    assert first.author == "David Smith in Washington"
    assert first.outlet == "The Guardian"
    assert first.topics == ["Donald Trump", "State of the Union address", "US news", "US politics", "Democrats",
                            "Republicans", "US Congress"]
    assert first.summary == ("The president’s ‘new American moment’ speech stirred Republican applause while "
                             "Democrats showed thinly disguised contempt")
    assert [s.paragraphs for s in first.sections] == [[
        ("Donald Trump has promised a “new American moment” in a State of the Union address that sought harmony "
         "but succeeded only in underlining the deep discord at the heart of the country’s politics.")]]
    # Of the two media:content renditions (140 and 460 wide), the larger one.
    assert first.image_url is not None and "w=460" in first.image_url
    assert first.image_alt is None
    _feed_only_fields(first, "guardian_us_2018-01-31.rss")
    videos = [a for a in feed.articles if "/video/" in (a.url or "")]
    assert videos and all(a.author is None for a in videos)  # no dc:creator, and the channel has no author


def test_talkingpointsmemo_atom_resolves_relative_links(shared_dir: Path) -> None:
    feed = _feed(shared_dir, "talkingpointsmemo_all_2017-11-08.atom")
    _common_checks(feed)
    assert feed.title == "All TPM News" and len(feed.articles) == 20
    first = feed.articles[0]
    assert first.title == "Hannity Announces Fox Has Hired Sebastian Gorka As NatSec Strategist"
    # The feed links to "/livewire/..."; the feed's own link is the base.
    assert first.url == ("http://talkingpointsmemo.com/livewire/"
                         "hannity-announces-fox-hired-sebastian-gorka-national-security-strategist")
    assert first.published_at == _utc(2017, 11, 8, 23, 15, 58)  # 18:15:58-05:00
    assert first.author == "Esme Cribb" and first.outlet == "TPM"  # the publisher in "All TPM News"
    assert first.topics == [] and first.image_url is None and first.image_alt is None
    assert first.summary == ("Fox News star host Sean Hannity on Wednesday announced that the network has hired "
                             "Sebastian Gorka, formerly deputy assistant to President Donald Trump and a "
                             "counterterrorism adviser, as a national security strategist.")
    paragraphs = first.sections[0].paragraphs
    assert len(paragraphs) == 5
    # Entities decoded, links reduced to their text.
    assert paragraphs[0] == ("“Joining us now is Dr. Sebastian Gorka,” Hannity said on his radio show. “I can "
                             "officially announce today he is a Fox News national security strategist.”")
    assert [s.heading for s in first.sections] == [None]
    assert paragraphs[-1] == ("Gorka’s dubious credentials as a self-proclaimed expert on counterterrorism and his "
                              "history of Islamophobic rhetoric drew calls for his removal months before he left "
                              "Trump’s administration.")
    assert {a.author for a in feed.articles} >= {"Josh Marshall", "DAVID PORTER", "Associated Press"}
    _feed_only_fields(first, "talkingpointsmemo_all_2017-11-08.atom")


def test_lemonde_rss_drops_tracking_parameters_and_keeps_enclosures(shared_dir: Path) -> None:
    feed = _feed(shared_dir, "lemonde_une_2018-02-11.xml")
    _common_checks(feed)
    assert feed.title == "Le Monde.fr - Actualités et Infos en France et dans le monde"
    assert len(feed.articles) == 21
    first = feed.articles[0]
    assert first.title == "JO d’hiver 2018 : pas de médaille pour Martin Fourcade"
    assert first.url == ("http://www.lemonde.fr/jeux-olympiques-pyeongchang-2018/live/2018/02/11/"
                         "jo-d-hiver-2018-suivez-la-course-de-martin-fourcade-en-direct_5255095_5193626.html")
    assert first.published_at == _utc(2018, 2, 11, 10, 0, 26)  # 11:00:26 +0100
    assert first.author is None and first.outlet == feed.outlet == "Le Monde" and first.topics == []
    # The enclosure is the image; the feed gives no alt text.
    assert first.image_url == ("http://s1.lemde.fr/image/2018/02/11/644x322/5255112_3_a8dc_martin-fourcade_"
                               "02be61d126b2da39d977b2e1902c819a.jpg")
    assert first.image_alt is None
    assert first.summary == ("Les grands favoris, dont Martin Fourcade, qui termine à la 8e place, et le Norvégien "
                             "Boe, ont été à la peine lors de l’épreuve de sprint de biathlon.")
    assert first.sections == []  # the description is one paragraph: the summary
    _feed_only_fields(first, "lemonde_une_2018-02-11.xml")
    assert not any("xtor=" in (a.url or "") for a in feed.articles)


def test_heise_atom_images_from_content_and_no_publisher_byline(shared_dir: Path) -> None:
    feed = _feed(shared_dir, "heise_developer_2016-02-01.atom")
    _common_checks(feed)
    assert feed.title == "heise developer neueste Meldungen" and len(feed.articles) == 15
    first = feed.articles[0]
    assert first.title == "Java-Anwendungsserver: Red Hat gibt WildFly 10 frei"
    assert first.url == ("http://www.heise.de/developer/meldung/"
                         "Java-Anwendungsserver-Red-Hat-gibt-WildFly-10-frei-3088438.html")
    assert first.published_at == _utc(2016, 2, 1, 16, 22)  # <published>, not <updated>
    # Entries have no author; the feed's <author>, "heise online", is the publisher, not a byline.
    assert first.author is None
    assert first.outlet == "heise developer" and first.topics == []
    assert first.image_url == ("http://www.heise.de/scale/geometry/264/q80/imgs/18/1/7/3/9/9/2/1/"
                               "wildfly-2bf4ffd2935e38b6-90200def80b152e9-5ba35d3770232d92.jpeg")
    assert first.image_alt == "WildFly 10"
    assert first.summary is not None and first.summary.startswith("Die nun verfügbare Version 10")
    assert first.summary.endswith("seit dem Namenswechsel des Open-Source-Projekts.")
    assert first.sections == []  # the content repeats the summary, nothing more
    _feed_only_fields(first, "heise_developer_2016-02-01.atom")
    dotnet = next(a for a in feed.articles if a.title.startswith("Der Dotnet-Doktor"))
    assert dotnet.image_url is None and dotnet.title.endswith("GPX-Dateien")  # trailing space trimmed


def _rss(items: str, *, declared: str = "utf-8") -> str:
    return (f'<?xml version="1.0" encoding="{declared}"?>\n<rss version="2.0"><channel>'
            f"<title>Fictional Test Feed</title><link>https://news.example.org/</link>\n{items}\n</channel></rss>")


def _item(title: str, date: str, extra: str = "") -> str:
    slug = re.sub(r"\W+", "-", title.lower())
    return (f"<item><title>{title}</title><link>https://news.example.org/{slug}</link><pubDate>{date}</pubDate>"
            f"<description>A sentence long enough to be a summary of the story.</description>{extra}</item>\n")


@pytest.mark.parametrize(("raw", "expected"), [
    ("Seg, 12 Fev 2018 10:00:00 -0200", _utc(2018, 2, 12, 12, 0)),  # Portuguese
    ("segunda-feira, 12 de fevereiro de 2018 10:00", _utc(2018, 2, 12, 10, 0)),
    ("Sáb, 10 Mar 2018 09:30:00 -0300", _utc(2018, 3, 10, 12, 30)),
    ("dim., 11 févr. 2018 14:08:08 +0100", _utc(2018, 2, 11, 13, 8, 8)),  # French
    ("mar. 13 févr. 2018 09:00:00 +0100", _utc(2018, 2, 13, 8, 0)),  # "mar." is Tuesday here, not March
    ("Dimanche 11 février 2018 à 14h08", _utc(2018, 2, 11, 14, 8)),
    ("Mo, 01 Mär 2016 12:00:00 +0100", _utc(2016, 3, 1, 11, 0)),  # German
    ("Montag, 1. Februar 2016 17:54 MEZ", _utc(2016, 2, 1, 16, 54)),
    ("Do, 04 Feb 2016 10:00:00 +0100", _utc(2016, 2, 4, 9, 0)),
    ("Mar 11 2018", _utc(2018, 3, 11)),  # English stays English
])
def test_localized_dates_get_their_real_date(raw: str, expected: datetime) -> None:
    assert parse_date(raw) == expected
    feed = parse_feed(_rss(_item("Dated story", raw)).encode(), source="dates.rss")
    assert feed.articles[0].published_at == expected
    assert not any("no readable date" in w for w in feed.warnings)


@pytest.mark.parametrize("raw", ["bientôt", "12", "", "99 Foo 2018 99:99"])
def test_unreadable_dates_leave_the_date_empty_with_a_warning(raw: str) -> None:
    feed = parse_feed(_rss(_item("Undated story", raw)).encode(), source="undated.rss")
    assert feed.articles[0].published_at is None  # the store puts the first-ingest time there
    assert any("item 1 ('Undated story') has no readable date" in w for w in feed.warnings)


def test_malformed_feeds_keep_recovered_items_with_a_warning() -> None:
    stray_ampersand = _rss(_item("Fish & Chips Shop Reopens", "Sun, 11 Feb 2018 10:00:00 GMT")
                           + _item("Second Story", "Sun, 11 Feb 2018 11:00:00 GMT")).encode()
    feed = parse_feed(stray_ampersand, source="amp.rss")
    assert [a.title for a in feed.articles] == ["Fish & Chips Shop Reopens", "Second Story"]
    assert any("not well-formed" in w and "line 3" in w and "kept the 2 item(s)" in w for w in feed.warnings)

    truncated = (b'<?xml version="1.0"?>\n<rss version="2.0"><channel><title>x</title>\n'
                 b"<item><title>Cut Off</title><link>https://news.example.org/cut</link></item><item><ti")
    feed = parse_feed(truncated, source="cut.rss")
    assert [a.title for a in feed.articles] == ["Cut Off"]
    assert any("line 3" in w and "kept the 1 item(s)" in w for w in feed.warnings)

    wrong_encoding = _rss(_item("Café Opens in Montréal", "Sun, 11 Feb 2018 10:00:00 GMT")).encode("latin-1")
    feed = parse_feed(wrong_encoding, source="latin1.rss")
    assert feed.articles[0].title == "Café Opens in Montréal"
    assert any("declared as utf-8" in w for w in feed.warnings)


@pytest.mark.parametrize(("data", "line", "reason"), [
    (b"", None, "no RSS or Atom elements"),
    (b"<html><body><p>A web page, not a feed.</p></body></html>", None, "no RSS or Atom elements"),
    (b"Title/ Outlet/ CITY/ Author/ Edition/ a Newslooks article", 1, "not well-formed"),
    (b'<?xml version="1.0"?>\n<rss version="2.0">\n<channel><title>x</ti', 3, "not an RSS or Atom feed"),
])
def test_documents_that_are_not_feeds_are_parse_errors(data: bytes, line: int | None, reason: str) -> None:
    with pytest.raises(ParseError) as caught:
        parse_feed(data, source="bad.xml")
    assert reason in str(caught.value) and caught.value.source == "bad.xml" and caught.value.line == line


def test_a_feed_without_items_is_empty_not_broken() -> None:
    feed = parse_feed(_rss("").encode(), source="empty.rss")
    assert feed.articles == [] and feed.warnings == ["empty.rss: the feed has no items"]


def test_images_links_and_titles() -> None:
    items = (
        '<item><title>Video First</title><link>/a</link>'
        '<media:content url="https://cdn.example.org/clip.mp4" type="video/mp4" width="1920"/>'
        '<media:content url="https://cdn.example.org/still.jpg" medium="image" width="640"/>'
        "<description>Text of the first story goes here.</description></item>"
        '<item><title>Pixel Only</title><link>javascript:alert(1)</link>'
        '<description>&lt;img src="https://track.example.org/p.gif" width="1" height="1"&gt;'
        '&lt;img src="/img/real.png" alt="A real picture"&gt;&lt;p&gt;Body text of the story.&lt;/p&gt;'
        "</description></item>"
        "<item><link>https://news.example.org/untitled</link>"
        "<description>&lt;p&gt;The first sentence stands in for a missing title. Then more.&lt;/p&gt;</description></item>"
        "<item><description></description></item>"
    )
    text = _rss(items).replace("<rss ", '<rss xmlns:media="http://search.yahoo.com/mrss/" ')
    feed = parse_feed(text.encode(), source="img.rss")
    video, pixel, untitled = feed.articles
    assert video.url == "https://news.example.org/a"
    assert video.image_url == "https://cdn.example.org/still.jpg"
    assert pixel.url is None  # never a javascript: link in an email
    assert (pixel.image_url, pixel.image_alt) == ("https://news.example.org/img/real.png", "A real picture")
    assert untitled.title == "The first sentence stands in for a missing title."
    assert any("item 4 has neither a title nor text; skipped" in w for w in feed.warnings)


def test_fetched_feeds_resolve_links_against_their_url() -> None:
    data = b'<rss version="2.0"><channel><title>t</title><item><title>x</title><link>story/1</link></item></channel></rss>'
    feed = parse_feed(data, source="https://feeds.example.org/news/rss.xml",
                      base_url="https://feeds.example.org/news/rss.xml")
    assert feed.articles[0].url == "https://feeds.example.org/news/story/1"


def test_clean_html_drops_furniture_and_keeps_prose() -> None:
    html = """
      <div class="share-bar"><a href="#">Tweet</a><button>Share</button></div>
      <p>First paragraph with a <a href="https://x.example/">link</a> &amp; an entity.</p>
      <script>track()</script><style>p{}</style>
      <img src="https://feeds.feedburner.com/~r/example/~4/abc" height="1" width="1"/>
      <p>Second&nbsp;paragraph.<br>Same paragraph, next line.</p>
      <p><span>Related: </span><a href="https://x.example/other">Another story</a></p>
      <div class="feedflare"><a href="#">Email this</a></div>
      <p><a href="https://x.example/more">Continue reading...</a></p>
      <p>Lire la suite</p>
      <p>The post Something appeared first on Example Blog.</p>
    """
    cleaned = clean_html(html)
    assert cleaned.paragraphs == ["First paragraph with a link & an entity.",
                                  "Second paragraph. Same paragraph, next line."]
    assert cleaned.image_url is None  # the only image was a tracking pixel
    assert clean_html("plain text, no markup").paragraphs == ["plain text, no markup"]
    assert clean_html("").paragraphs == []


RSS_091 = b"""<?xml version="1.0"?>
<rss version="0.91"><channel><title>Fictional 0.91 Wire</title><link>http://wire.example.org/</link>
<item><title>Old Format Still Reads</title><link>http://wire.example.org/old</link>
<description>A plain description of the story.</description></item></channel></rss>"""

RSS_10 = b"""<?xml version="1.0"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
         xmlns:dc="http://purl.org/dc/elements/1.1/">
  <channel rdf:about="http://rdf.example.org/"><title>Fictional RDF Daily</title><link>http://rdf.example.org/</link>
    <description>d</description></channel>
  <item rdf:about="http://rdf.example.org/story"><title>RDF Story</title><link>http://rdf.example.org/story</link>
    <dc:creator>Rita Example</dc:creator><dc:date>2018-02-11T09:30:00+01:00</dc:date><dc:subject>Science</dc:subject>
    <description>The story in one sentence.</description></item>
</rdf:RDF>"""

ATOM_XML_BASE = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example.org/blog/">
  <title>Fictional Atom Blog</title><id>urn:x</id><updated>2018-02-11T10:00:00Z</updated>
  <entry><title type="html">Markup &lt;em&gt;in&lt;/em&gt; a Title</title><id>urn:y</id>
    <link href="posts/1"/><updated>2018-02-11T10:00:00Z</updated><author><name>Ann Example</name></author>
    <summary type="text">Plain summary text.</summary></entry>
</feed>"""


def test_other_feed_versions_rss091_rss10_and_atom_xml_base() -> None:
    old = parse_feed(RSS_091, source="old.rss").articles[0]
    assert (old.title, old.url, old.published_at) == ("Old Format Still Reads", "http://wire.example.org/old", None)
    rdf = parse_feed(RSS_10, source="rdf.xml").articles[0]
    assert (rdf.title, rdf.url, rdf.author, rdf.topics) == ("RDF Story", "http://rdf.example.org/story",
                                                            "Rita Example", ["Science"])
    assert rdf.published_at == _utc(2018, 2, 11, 8, 30)
    atom = parse_feed(ATOM_XML_BASE, source="atom.xml").articles[0]
    assert atom.title == "Markup in a Title" and atom.author == "Ann Example"
    assert atom.url == "https://atom.example.org/blog/posts/1"
    assert atom.summary == "Plain summary text."
