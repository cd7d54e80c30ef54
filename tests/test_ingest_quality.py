"""Ingest keeps the story and drops the site around it (issue 11, part 1), on the shared real feeds and on our
two fictional ones (samples/feeds/harbor-courier.rss, a US newspaper's feed with share bars, ads and click
tracking; samples/feeds/diario-vila-serena.rss, a Brazilian feed in ISO-8859-1), through the real parse path."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from bs4 import BeautifulSoup

from digest.errors import ParseError
from digest.ingest.ads import advertising_reason
from digest.ingest.clean import clean_html
from digest.ingest.feeds import parse_feed
from digest.ingest.images import MIN_SIDE, Image, furniture_reason
from digest.ingest.jsonl import parse_json
from digest.ingest.outlets import publisher_name
from digest.ingest.pipeline import finish, parse_bytes
from digest.ingest.urls import canonical_url, is_tracker_redirect
from digest.models import Article, article_id
from digest.render.edition import render_selection
from tests.render_helpers import EDITION_DATE, list_row, selection, settings

from .conftest import REPO, Project

SAMPLES = REPO / "samples" / "feeds"
# The publisher each feed's byline must show (never the feed's slogan), by file.
OUTLETS = {
    "guardian_us_2018-01-31.rss": "The Guardian",
    "heise_developer_2016-02-01.atom": "heise developer",
    "lemonde_une_2018-02-11.xml": "Le Monde",
    "talkingpointsmemo_all_2017-11-08.atom": "TPM",
    "harbor-courier.rss": "Harbor City Courier",
    "diario-vila-serena.rss": "Diário de Vila Serena",
}
SHARED = [name for name in OUTLETS if "_" in name]
OURS = [name for name in OUTLETS if "_" not in name]
# What must never reach the store: read-on links, help marks, share bars, promotions, in the feeds' languages.
JUNK = re.compile(r"continue reading|read full article|read more\b|\[\?\]|leia mais|lire la suite|weiterlesen|"
                  r"add to facebook|tweet this|email this|compartilhar|get our free news app|sign up\b|"
                  r"baixe o aplicativo|assine a newsletter|tip-offs", re.IGNORECASE)
TRACKER = re.compile(r"click\.phdo|feedproxy|/~r/|[?&](utm_\w+|fbclid|gclid|xtor|mc_cid)=", re.IGNORECASE)
AD = re.compile(r"featured advertiser|sponsored|advertisement|publicidade|anzeige", re.IGNORECASE)


def _path(name: str, shared_dir: Path | None) -> Path:
    if name in OURS:
        return SAMPLES / name
    assert shared_dir is not None
    return shared_dir / "samples" / "feeds" / name


def _texts(article: Article) -> list[str]:
    return [article.title, article.summary or "", *article.quick_looks,
            *(p for s in article.sections for p in s.paragraphs)]


@pytest.fixture
def feeds_dir(request: pytest.FixtureRequest) -> Path | None:
    return request.getfixturevalue("shared_dir") if request.node.callspec.params["name"] in SHARED else None


@pytest.mark.parametrize("name", list(OUTLETS))
def test_every_feed_keeps_only_the_story(name: str, feeds_dir: Path | None) -> None:
    path = _path(name, feeds_dir)
    parsed = parse_bytes(path.read_bytes(), source=str(path))
    assert parsed.articles
    raw_title = parsed.feed_title or ""
    for article in parsed.articles:
        finish(article, published=None, topics=(), rules=())
        where = (name, article.title)
        # A real photo or none: never furniture, never narrower or lower than MIN_SIDE when the size is known.
        if article.image_url:
            assert furniture_reason(Image(article.image_url, article.image_alt, article.image_width,
                                          article.image_height)) is None, where
            assert article.image_width is None or article.image_width >= MIN_SIDE, where
            assert article.image_height is None or article.image_height >= MIN_SIDE, where
        else:
            assert (article.image_width, article.image_height) == (None, None), where
        assert not AD.search(article.title), where
        assert article.url and not TRACKER.search(article.url), (where, article.url)
        assert article.outlet == OUTLETS[name], where
        assert article.author is None or article.author.casefold() not in {raw_title.casefold(),
                                                                           OUTLETS[name].casefold()}, where
        for text in _texts(article):
            assert not JUNK.search(text), (where, text)


def test_the_us_newspaper_feed(tmp_path: Path) -> None:
    feed = parse_feed((SAMPLES / "harbor-courier.rss").read_bytes(), source="harbor-courier.rss")
    by_title = {a.title: a for a in feed.articles}
    assert feed.outlet == "Harbor City Courier" and len(feed.articles) == 4
    # The three ad items are not articles, and each is reported with what gave it away.
    assert [(s.title, s.reason) for s in feed.skipped] == [
        ("Featured Advertiser: Summer Savings at Bayside Mattress Outlet",
         "advertising: the title says 'Featured Advertiser'"),
        ("Sponsored: Five Reasons to Visit the Harbor County Fair", "advertising: the title says 'Sponsored'"),
        # Its title is only the label: the reader falls back to the first sentence, the report names the label.
        ("Refinance today with Harbor County Credit Union.", "advertising: the title says 'Advertisement'"),
    ]
    ferry = by_title["Harbor City Ferry Adds Late-Night Crossings for the Summer"]
    # pheedo's origLink, not its click.phdo redirect, and without the tracking parameters it carried.
    assert ferry.url == "https://www.harborcourier.example/news/2025/08/18/ferry-late-night-crossings"
    assert (ferry.image_url, ferry.image_width, ferry.image_height) == (
        "https://www.harborcourier.example/img/2025/08/ferry-dock.jpg", 640, 360)
    assert ferry.author == "Dana Whitlock"
    assert ferry.sections[0].paragraphs == [
        ("Riders had asked for later boats since the waterfront night market opened in June. The authority "
        "expects the crossings to cost $40,000 for the season.")]
    schools = by_title["Harbor City Schools Name New Superintendent"]
    assert schools.url == "https://www.harborcourier.example/news/2025/08/17/schools-superintendent"
    assert schools.author is None  # its dc:creator is the feed's slogan
    assert schools.image_url is None  # feedburner flare and its pixel only
    storm = by_title["Storm Knocks Out Power to 8,000 Homes on the East Shore"]
    assert storm.url == "https://www.harborcourier.example/news/2025/08/16/storm-power-east-shore"  # the guid
    # The 1200 px media:content, not the 72 px thumbnail or the AddThis "Share" button before the text.
    assert (storm.image_url, storm.image_width) == ("https://www.harborcourier.example/img/2025/08/storm-crew.jpg",
                                                    1200)
    cruise = by_title["Port Authority Approves Bigger Cruise Terminal"]
    assert cruise.image_url is None  # a 90 px thumbnail and two 16 px share buttons: better none
    assert cruise.sections[0].paragraphs[-1].endswith("before construction starts next spring.")


def test_the_brazilian_feed_in_iso_8859_1() -> None:
    data = (SAMPLES / "diario-vila-serena.rss").read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="ISO-8859-1"?>')
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # it really is Latin-1, as the declaration says
    feed = parse_feed(data, source="diario-vila-serena.rss")
    assert feed.title == "Diário de Vila Serena - Últimas notícias do Brasil e do mundo"
    assert feed.outlet == "Diário de Vila Serena"
    assert [s.reason for s in feed.skipped] == ["advertising: the title says 'Publicidade'"]
    health, football, rain = feed.articles
    assert health.title == "Prefeitura de Vila Serena amplia horário dos postos de saúde"
    assert health.url == "https://www.diariovilaserena.example/cotidiano/2025/08/postos-de-saude-horario.shtml"
    assert health.sections[0].paragraphs[-1].endswith("onde o horário estendido já foi testado.")
    assert football.author is None and football.image_width == 620
    assert football.sections[0].paragraphs[-1].endswith("na fase nacional.")
    assert rain.image_url is None  # the only image is a 20 px "Compartilhar" button
    assert rain.sections[0].paragraphs == [
        ("A Defesa Civil registrou 14 pontos de alagamento e pediu que os moradores evitassem a avenida "
        "Beira-Rio. Não houve feridos.")]


@pytest.mark.parametrize(("image", "refused"), [
    (Image("https://cdn.example.org/photo.jpg", "The mayor at the lectern", 640, 360), False),
    (Image("https://cdn.example.org/photo.jpg"), False),  # no size given: nothing says it is small
    (Image("https://cdn.example.org/photo.jpg", width=99), True),
    (Image("https://cdn.example.org/strip.jpg", width=600, height=40), True),
    (Image("https://cdn.example.org/p.gif", width=1, height=1), True),
    (Image("https://news.example.org/static/icons/facebook_16.png"), True),
    (Image("https://news.example.org/i/fb.png", "Add to Facebook"), True),
    (Image("https://news.example.org/i/t.png", "Tweet this"), True),
    (Image("https://news.example.org/i/s.png", "Share"), True),
    (Image("https://news.example.org/i/x.png", link="http://www.facebook.com/sharer.php?u=x"), True),
    (Image("https://news.example.org/i/x.png", link="https://twitter.com/intent/tweet?url=x"), True),
    (Image("http://feeds.feedburner.com/~ff/Site?d=yIl2AUoC8zA"), True),
    (Image("http://feeds.feedburner.com/~r/Site/~4/abc"), True),
    (Image("http://ads.pheedo.com/img.phdo?s=1"), True),
    (Image("https://ad.doubleclick.net/ad/site;sz=300x250"), True),
    (Image("https://s7.addthis.com/static/btn/sm-share-en.gif"), True),
    (Image("https://news.example.org/ads/300x250/bank.jpg", width=300, height=250), True),
    (Image("https://news.example.org/img/spacer.gif"), True),
    (Image("https://news.example.org/img/sharing-the-road.jpg", "Cyclists share the road", 800, 450), False),
])
def test_lead_image_furniture(image: Image, refused: bool) -> None:
    assert (furniture_reason(image) is not None) is refused


def test_body_images_keep_their_size_and_the_first_real_photo_leads() -> None:
    cleaned = clean_html('<p><a href="http://www.facebook.com/sharer.php?u=x"><img src="/i/fb.png" width="16">'
                         '</a><img src="/i/spacer.gif" style="width:1px;height:1px">'
                         '<img src="/img/photo.jpg" width="480px" height="320" alt="A photo"></p><p>Text.</p>')
    assert (cleaned.image_url, cleaned.image_alt, cleaned.image_width, cleaned.image_height) == (
        "/img/photo.jpg", "A photo", 480, 320)
    assert [i.url for i in cleaned.images] == ["/i/fb.png", "/i/spacer.gif", "/img/photo.jpg"]
    assert cleaned.paragraphs == ["Text."]


@pytest.mark.parametrize(("title", "reason"), [
    ("Featured Advertiser: Spring sale", "advertising: the title says 'Featured Advertiser'"),
    ("[Anzeige] Das neue Elektroauto", "advertising: the title says 'Anzeige'"),
    ("Publicité - Le meilleur matelas", "advertising: the title says 'Publicité'"),
    ("Five gadgets for the summer (Sponsored)", "advertising: the title says 'Sponsored'"),
    ("Publicidad: vuelos baratos", "advertising: the title says 'Publicidad'"),
    # News that names a sponsor, an advertiser or an ad is still news.
    ("Stadium sponsored by the bank loses its name", None),
    ("Advertisement rules tightened for sugary drinks", None),
    ("Anzeige gegen Unbekannt erstattet", None),
    ("Promotion for the deputy mayor after the vote", None),
])
def test_advertising_titles(title: str, reason: str | None) -> None:
    assert advertising_reason(title=title) == reason


def test_advertising_by_category_byline_and_ad_server_link() -> None:
    assert advertising_reason(title="Spring sale", categories=["Sponsored content"]) == (
        "advertising: category 'Sponsored content'")
    assert advertising_reason(title="Spring sale", author="Featured Advertiser") == (
        "advertising: the byline says 'Featured Advertiser'")
    assert advertising_reason(title="Spring sale", link="https://ad.doubleclick.net/clk;123;4") == (
        "advertising: the link goes to an ad server (ad.doubleclick.net)")
    assert advertising_reason(title="Spring sale", link="https://www.example.org/news/spring") is None


@pytest.mark.parametrize(("html", "paragraphs"), [
    ("<p>The council voted.</p><a href='/x'>Continue reading...</a>", ["The council voted."]),
    ("<p>The council voted. Read full article &gt;&gt;</p>", ["The council voted."]),
    ("<p>The council voted. [?]</p>", ["The council voted."]),
    ("<p>The council voted.</p><p>Add to Facebook | Tweet this | Email this</p>", ["The council voted."]),
    ("<p>The council voted.</p><p>Get our free news app, morning email briefing or daily news podcast</p>",
     ["The council voted."]),
    ("<p>The council voted.</p><p>Sign up to the Daily Briefing, our morning email</p>", ["The council voted."]),
    ("<p>Le conseil a voté. Lire la suite</p><p>Abonnez-vous à notre newsletter</p>", ["Le conseil a voté."]),
    ("<p>Der Rat hat abgestimmt. Weiterlesen</p><p>Newsletter abonnieren und nichts verpassen</p>",
     ["Der Rat hat abgestimmt."]),
    ("<p>A câmara votou. Leia mais...</p><p>Baixe o aplicativo do jornal</p>", ["A câmara votou."]),
    ("<p>El concejo votó. Leer más</p><p>Suscríbete a nuestro boletín</p>", ["El concejo votó."]),
    ("<p>Il consiglio ha votato. Continua a leggere</p><p>Iscriviti alla newsletter</p>",
     ["Il consiglio ha votato."]),
    # Words that only look like the furniture, inside or ending a sentence, stay.
    ("<p>Experts say children should read more.</p><p>Adults should read more</p>",
     ["Experts say children should read more.", "Adults should read more"]),
    ("<p>She told readers to continue reading the report before the vote.</p>",
     ["She told readers to continue reading the report before the vote."]),
])
def test_boilerplate_rules(html: str, paragraphs: list[str]) -> None:
    assert clean_html(html).paragraphs == paragraphs


@pytest.mark.parametrize(("url", "tracker"), [
    ("http://ads.pheedo.com/click.phdo?s=abc&p=1", True),
    ("http://feeds.feedburner.com/~r/Site/News/~3/abc/", True),
    ("http://feedproxy.google.com/~r/Site/~3/abc/story", True),
    ("https://www.theguardian.com/us-news/2018/jan/31/story", False),
    ("https://clickhole.example.org/story", False),
])
def test_tracker_redirects(url: str, tracker: bool) -> None:
    assert is_tracker_redirect(url) is tracker


def test_tracking_parameters_go_and_the_others_keep_their_order() -> None:
    assert canonical_url("https://news.example.org/a?page=2&utm_source=rss&fbclid=x&b=1&gclid=y&a=2&mc_cid=z"
                         "&xtor=RSS-1&_hsenc=q#top") == "https://news.example.org/a?page=2&b=1&a=2"


@pytest.mark.parametrize(("title", "site", "outlet"), [
    ("World news | The Guardian", "https://www.theguardian.com/world", "The Guardian"),
    ("Le Monde.fr - Actualités et Infos en France et dans le monde", "http://www.lemonde.fr/rss/une.xml",
     "Le Monde"),
    ("heise developer neueste Meldungen", "http://www.heise.de/developer/", "heise developer"),
    ("All TPM News", "http://talkingpointsmemo.com", "TPM"),
    ("Politics: The Atlantic", "https://www.theatlantic.com", "The Atlantic"),
    ("NYT > Top Stories", "https://www.nytimes.com", "NYT"),
    ("BBC News - Home", "https://www.bbc.co.uk/news", "BBC News"),
    # Publishers whose names end in a word that elsewhere is a label.
    ("Fox News", None, "Fox News"),
    ("Salzburger Nachrichten", None, "Salzburger Nachrichten"),
    ("Diário de Notícias", None, "Diário de Notícias"),
])
def test_publisher_names(title: str, site: str | None, outlet: str) -> None:
    assert publisher_name(title, site) == outlet


def test_ids_stay_those_of_the_feed_title_for_items_without_a_link() -> None:
    feed = parse_feed(b"""<?xml version="1.0"?><rss version="2.0"><channel>
        <title>Example Tribune - Breaking News and Weather</title>
        <item><title>No Link Here</title><description>Text.</description>
        <pubDate>Mon, 18 Aug 2025 06:10:00 GMT</pubDate></item></channel></rss>""", source="t.rss")
    article = feed.articles[0]
    assert article.outlet == "Example Tribune" and article.url is None
    when = datetime(2025, 8, 18, 6, 10, tzinfo=UTC)
    assert article.id == article_id(None, "Example Tribune - Breaking News and Weather", "No Link Here", when)


def test_image_sizes_round_trip_through_json_and_are_checked() -> None:
    article = Article(id="a1", title="T", image_url="https://x.example.org/p.jpg", image_width=320,
                      image_height=200)
    back = parse_json(json.dumps([article.to_json()]), source="e.json").articles[0]
    assert (back.image_width, back.image_height) == (320, 200)
    for bad in ("320", 0, -5, True, 10**9):
        with pytest.raises(ParseError, match=r"item 1: field 'image_width' must be a whole number of pixels"):
            parse_json(json.dumps([{"title": "T", "image_width": bad}]), source="e.json")


def test_a_small_image_is_shown_at_its_width_or_not_at_all(tmp_path: Path) -> None:
    src = "https://ledger.example.org/img/bridge-1.jpg"

    def image_cell_width(image_width: int | None) -> str | None:
        built = render_selection(settings(tmp_path), list_row(), EDITION_DATE,
                                 selection(1, image_width=image_width, image_height=160))
        img = BeautifulSoup(built.html, "html.parser").find("img", src=src)
        cell = img.find_parent("td") if img is not None else None
        return None if cell is None else str(cell.get("width"))

    # Under the lead's picture width a thumbnail is left out rather than stretched to the column.
    assert image_cell_width(120) is None
    # A picture narrower than the column keeps its own width; a wider or unknown one fills the column (552).
    assert image_cell_width(400) == "400"
    assert image_cell_width(1200) == image_cell_width(None) == "552"


def test_ingest_reports_skipped_ads_and_a_shortened_outlet(project: Project) -> None:
    result = project.run("ingest", str(SAMPLES / "harbor-courier.rss"), "--json")
    report = json.loads(result.stdout)
    source = report["sources"][0]
    assert source["new"] == 4 and len(source["articles"]) == 4
    assert [s["reason"] for s in source["skipped"]] == [
        "advertising: the title says 'Featured Advertiser'", "advertising: the title says 'Sponsored'",
        "advertising: the title says 'Advertisement'"]
    assert source["skipped"][0]["title"] == "Featured Advertiser: Summer Savings at Bayside Mattress Outlet"
    assert any("outlet 'Harbor City Courier' from the feed title" in w for w in source["warnings"])
    stored = project.json("articles")
    assert len(stored) == 4 and not any(AD.search(a["title"]) for a in stored)
    assert {a["outlet"] for a in stored} == {"Harbor City Courier"}
    ferry = next(a for a in stored if a["title"].startswith("Harbor City Ferry"))
    assert (ferry["image_width"], ferry["image_height"]) == (640, 360)

    text = project.run("ingest", str(SAMPLES / "harbor-courier.rss"))
    assert "0 new, 0 updated, 4 unchanged, 0 failed source(s), 3 item(s) skipped." in text.stdout
    assert ("Skipped: " + str(SAMPLES / "harbor-courier.rss") + ": 'Sponsored: Five Reasons to Visit the Harbor "
            "County Fair': advertising: the title says 'Sponsored'") in text.stdout
    assert "Warning: " in text.stderr and "outlet 'Harbor City Courier'" in text.stderr

    # outlet_names still decides, keyed by the feed's title as written; then nothing was shortened to report.
    project.write_config('outlet_names = {"Harbor City Courier - Breaking News, Sports, Weather and Traffic" = '
                         '"The Courier"}\n')
    renamed = json.loads(project.run("ingest", str(SAMPLES / "harbor-courier.rss"), "--json").stdout)
    assert renamed["sources"][0]["updated"] == 4 and renamed["sources"][0]["warnings"] == []
    assert {a["outlet"] for a in project.json("articles")} == {"The Courier"}
