"""The newsroom layout: a lead story, compact cards, topic sections, read-on links, attributes without
mjml-python's ``\\u{..}`` escapes, and image widths Outlook honours (fictional articles)."""

from __future__ import annotations

import re
from pathlib import Path

from bs4 import BeautifulSoup

from digest.render.context import CONTENT_WIDTH
from digest.render.edition import render_selection
from digest.render.personalize import personalize
from tests.render_helpers import EDITION_DATE, article, list_row, recipient, selection, settings


def soup_of(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def test_nbsp_and_guillemets_never_reach_an_attribute_as_an_escape(tmp_path: Path) -> None:
    title = "« Bac : comment préparer l’oral »"
    chosen = selection(1, title=title, image_alt=None, language="fr")
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen)
    assert "\\u{" not in rendered.html and "\\u{" not in rendered.mjml
    img = soup_of(rendered.html).find("img", src=article(1).image_url)
    # The alt text is the headline, with the no-break spaces French typography puts inside « » and before ":".
    assert img["alt"] == "«\u202fBac\u00a0: comment préparer l’oral\u202f»"
    assert "\\u{" not in soup_of(rendered.html).title.get_text()


def test_the_lead_has_its_picture_at_the_column_width_and_the_rest_are_compact(tmp_path: Path) -> None:
    chosen = selection(3)
    chosen.items[1].article.image_url = "https://ledger.example.org/img/ferry.jpg"  # a compact card: no picture
    soup = soup_of(render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen).html)
    images = [i for i in soup.find_all("img") if "ledger.example.org/img/" in i["src"]]
    assert [i["src"] for i in images] == [article(1).image_url]
    assert images[0]["width"] == str(CONTENT_WIDTH) == "552"
    cell = images[0].find_parent("td")
    assert f"width:{CONTENT_WIDTH}px" in cell["style"].replace(" ", "")
    assert soup.select_one("h2.headline.lead").get_text(strip=True) == article(1).title
    # A known-narrow image (an icon) is no lead picture; one narrower than the column keeps its own width.
    for width, shown in ((120, None), (400, "400"), (1200, "552")):
        sized = selection(1)
        sized.items[0].article.image_width = width  # set by ingest where the feed or page says it
        img = soup_of(render_selection(settings(tmp_path), list_row(), EDITION_DATE, sized).html).find(
            "img", src=article(1).image_url)
        assert (img["width"] if img else None) == shown


def test_a_summary_only_item_gets_a_read_on_link_to_its_page(tmp_path: Path) -> None:
    chosen = selection(2)
    for item in chosen.items:  # what Le Monde's and heise's feeds send: a headline, a summary, a link
        item.article.quick_looks = []
        item.article.sections = []
        item.article.deep_look_title = None
    # Feeds name themselves with a tagline; the read-on link names the outlet only.
    chosen.items[1].article.outlet = "Le Monde.fr - Actualités et Infos en France et dans le monde"
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen)
    soup = soup_of(rendered.html)
    assert soup.select("ul.quick-looks") == []
    for h, read_on in zip(soup.select("h2.headline"), soup.select("p.read-on a"), strict=True):
        assert read_on["href"] == h.find("a")["href"]
        assert read_on.find_parent("div") is not None
    assert [a.get_text(strip=True) for a in soup.select("p.read-on a")] == [
        "Read on at Springfield Ledger", "Read on at Le Monde.fr"]
    assert [p.get_text(strip=True) for p in soup.select("p.lede")] == [article(1).summary, article(2).summary]
    # Headlines look like the links they are: underlined.
    assert "text-decoration:underline" in soup.select_one("h2.headline a")["style"].replace(" ", "")


def test_topic_sections_follow_the_list_topic_order(tmp_path: Path) -> None:
    chosen = selection(5)
    topics = [["politics"], ["culture"], ["transport"], ["culture"], ["weather"]]
    for item, t in zip(chosen.items, topics, strict=True):
        item.article.topics = t
    row = list_row(topics=["transport", "culture", "politics"])
    plain = render_selection(settings(tmp_path), row, EDITION_DATE, chosen)
    assert soup_of(plain.html).select("h3.section") == []
    rendered = render_selection(settings(tmp_path, theme={"sections": True}), row, EDITION_DATE, chosen)
    soup = soup_of(rendered.html)
    assert [h.get_text(strip=True) for h in soup.select("h3.section")] == ["Transport", "Culture", "More"]
    order = [h.get_text(strip=True) for h in soup.select("h2.headline")]
    assert order == [article(1).title, article(3).title, article(2).title, article(4).title, article(5).title]
    assert "== TRANSPORT ==" in rendered.text and rendered.text.index("== CULTURE ==") > rendered.text.index(
        article(3).title)


def test_header_counts_stories_and_links_the_web_version_and_subscribe(tmp_path: Path) -> None:
    s = settings(tmp_path, base_url="https://news.example.org")
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(4))
    _, html, text = personalize(rendered, recipient())
    soup = soup_of(html)
    web = "https://news.example.org/archive/daily/2031-03-04"
    assert soup.find("a", string="View in browser")["href"] == web
    assert soup.find("a", string="Read it in your browser")["href"] == web
    assert soup.find("a", string=re.compile("^Subscribe to "))["href"] == "https://news.example.org/subscribe/daily"
    assert f"Read it in your browser: {web}" in text
    assert "Subscribe to The Springfield Ledger: https://news.example.org/subscribe/daily" in " ".join(text.split())
    # A private list without a secret_key to sign with: no web link at all.
    private = render_selection(s, list_row(archive="private"), EDITION_DATE, selection(4))
    assert "/archive/" not in private.html and "/archive/" not in private.text
    assert "/subscribe/daily" in private.html
    # With one, the link carries a token signed for the list and date: the same in every render, for every reader.
    signed = settings(tmp_path, base_url="https://news.example.org", secret_key="fictional-test-key")
    private = render_selection(signed, list_row(archive="private"), EDITION_DATE, selection(4))
    link = soup_of(private.html).find("a", string="View in browser")["href"]
    assert link.startswith(web + "/") and len(link) > len(web) + 20
    assert link in private.text.split()  # the text part wraps the long link onto a line of its own
    again = render_selection(signed.replace(secret_key="another-fictional-key"), list_row(archive="private"),
                             EDITION_DATE, selection(4))
    assert link not in again.html  # a new key: a new render, not the cached one


def test_cached_inlining_gives_what_a_fresh_premailer_gives(tmp_path: Path) -> None:
    # The per-template work kept between variants (parsed <style> rules, attributes per style) must not change
    # a byte of any variant: each is compared with a premailer that keeps nothing.
    import logging

    from premailer import Premailer

    from digest.render import mjml, templates
    from digest.render.context import TEASER_LEVELS, build_context
    from digest.render.inline import inline_css
    from digest.render.theme import resolve_theme

    s = settings(tmp_path)
    row = list_row()
    theme = resolve_theme(s, row.from_name)
    items = selection(4).items
    for order in (items, items[::-1], items[1:]):
        ctx = build_context(s, row, EDITION_DATE, order, theme=theme, teaser=TEASER_LEVELS[0])
        html = mjml.to_html(templates.render(s, templates.HTML_TEMPLATE, ctx))
        fresh = Premailer(html, base_url=None, allow_network=False, allow_loading_external_files=False,
                          disable_link_rewrites=True, keep_style_tags=True, strip_important=False,
                          remove_classes=False, exclude_pseudoclasses=True, preserve_handlebar_syntax=True,
                          cssutils_logging_level=logging.CRITICAL, cache_css_parsing=False,
                          align_floating_images=False).transform(pretty_print=False)
        # The one intended difference: the lead image's pixel width, which premailer overwrites with "100%".
        expected = fresh.replace('width="100%" style="border:0', f'width="{CONTENT_WIDTH}" style="border:0', 1)
        assert inline_css(html).split("<html", 1)[1] == expected.split("<html", 1)[1]


def test_an_article_in_another_language_is_marked_as_such(tmp_path: Path) -> None:
    chosen = selection(2)
    chosen.items[1].article.language = "fr"  # set by ingest where the feed says
    chosen.items[0].article.language = "en"  # the email's own: nothing to mark
    soup = soup_of(render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen).html)
    first, second = soup.select("h2.headline")
    assert first.get("lang") is None and second["lang"] == "fr"
    assert [p.get("lang") for p in soup.select("p.lede")] == [None, "fr"]
    assert soup.select("p.read-on")[1].get("lang") is None  # our own words stay in the email's language
