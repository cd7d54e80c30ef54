"""Structure of the rendered edition (HTML and text), escaping, placeholders and the render cache."""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from bs4 import BeautifulSoup

from digest.render import personalize as pers
from digest.render.context import SUBJECT_MAX
from digest.render.edition import render_selection
from digest.render.personalize import TOKENS, HeaderInjection, escape_for, personalize
from tests.render_helpers import EDITION_DATE, EVIL_TITLE, article, list_row, recipient, selection, settings


def soup_of(html: str) -> BeautifulSoup:
    return BeautifulSoup(html, "lxml")


def test_html_structure_headlines_quick_looks_footer(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(4))
    _, html, _ = personalize(rendered, recipient())
    soup = soup_of(html)
    assert html.startswith("<!DOCTYPE html>")
    assert soup.html["lang"] == "en"
    headlines = soup.select("h2.headline")
    assert [h.get_text(strip=True) for h in headlines] == [article(i).title for i in range(1, 5)]
    for i, h in enumerate(headlines, 1):
        link = h.find("a")
        query = parse_qs(urlsplit(link["href"]).query)
        assert link["href"].startswith(f"https://ledger.example.org/news/footbridge-{i}?src=rss&")
        assert query["utm_source"] == ["digest"] and query["utm_medium"] == ["email"]
        assert query["utm_campaign"] == [f"daily-{EDITION_DATE.isoformat()}"]
    quick_looks = soup.select("ul.quick-looks")
    assert len(quick_looks) == 4
    assert [li.get_text(strip=True) for li in quick_looks[0].find_all("li")] == article(1).quick_looks
    deep = soup.select("p.deep-look a")
    assert len(deep) == 4 and deep[0].get_text(strip=True).startswith("Read the Deep Look")
    byline = soup.select_one("p.byline").get_text(strip=True)
    assert byline == "Springfield Ledger · Dana Example · SPRINGFIELD · 06:15 CET"
    img = soup.find("img", src="https://ledger.example.org/img/bridge-1.jpg")
    assert img is not None and img["alt"] == "Artist's drawing of the planned footbridge"
    also = soup.select("p.also")
    assert len(also) == 1 and "Valley Courier" in also[0].get_text()
    assert also[0].find("a")["href"].startswith("https://courier.example.org/bridge?")
    # The first story leads: the larger headline and the only picture; the rest are compact cards.
    assert [h.get("class") for h in headlines] == [["headline", "lead"]] + [["headline"]] * 3
    assert all(soup.find(id=f"story-{i}") for i in range(1, 5))
    assert soup.select_one("p.meta").get_text(" ", strip=True).startswith("4 stories · 1 min read")
    footer_links = {a.get_text(strip=True): a["href"] for a in soup.select(".dm-muted a")}
    assert footer_links["Unsubscribe"] == recipient().unsubscribe_url
    assert footer_links["Manage your preferences"] == recipient().preferences_url
    footer = soup.select_one(".dm-muted").get_text(" ", strip=True)
    assert "Example Newsroom, 1 Sample Street, Springfield" in footer
    assert "pat@readers.example.org" in footer
    assert soup.select_one("p.greeting").get_text() == "Hello Pat Reader, here are today's 4 stories."
    assert soup.title.get_text() == rendered.subject
    assert rendered.article_count == 4 and rendered.trimmed == []


def test_css_is_inlined_and_media_blocks_and_important_survive(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(2))
    soup = soup_of(rendered.html)
    styles = "\n".join(s.get_text() for s in soup.find_all("style"))
    assert "@media (prefers-color-scheme: dark)" in styles
    assert "@media only screen and (min-width:480px)" in styles
    assert "!important" in styles
    # premailer inlined the template's class rules into style attributes.
    assert "font-size:26px" in soup.select_one("h2.headline.lead")["style"].replace(" ", "")
    assert "font-size:19px" in soup.select("h2.headline")[1]["style"].replace(" ", "")
    assert soup.find("meta", attrs={"name": "color-scheme"}) is not None


def test_text_part_structure(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(3))
    _, _, text = personalize(rendered, recipient())
    assert "Hello Pat Reader, here are today's 3 stories." in text
    assert "3 stories · 1 min read" in text
    assert f"\n{article(1).title}\n" in text
    assert "  - The bridge will cost about 4 million in city funds." in text
    flat = " ".join(text.split())
    assert "Deep Look: How the vote came together (at the link above)" in flat
    assert flat.count("https://ledger.example.org/news/footbridge-1?") == 1  # the link once, under the headline
    assert f"Unsubscribe: {recipient().unsubscribe_url}" in text
    assert f"Manage your preferences: {recipient().preferences_url}" in text
    assert "&amp;" not in text and "&lt;" not in text
    assert all(len(line) <= 76 or "://" in line for line in text.splitlines())
    assert "\n\n\n" not in text


def test_script_title_is_inert_in_html_text_and_subject(tmp_path: Path) -> None:
    sel = selection(2, title=EVIL_TITLE)
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, sel)
    subject, html, text = personalize(rendered, recipient())
    soup = soup_of(html)
    assert soup.find_all("script") == []
    assert "<script>" not in html
    assert soup.select_one("h2.headline").get_text(strip=True) == EVIL_TITLE
    assert f"\n{EVIL_TITLE}\n" in text
    assert subject == EVIL_TITLE  # the default subject is the top story's headline
    assert "\n" not in subject and "\r" not in subject
    short = render_selection(settings(tmp_path, subject_template="{{ top_headline }}"), list_row(), EDITION_DATE, sel)
    assert short.subject == EVIL_TITLE
    assert soup.title.get_text() == subject


def test_unsafe_urls_never_become_links(tmp_path: Path) -> None:
    sel = selection(1, url="javascript:alert(1)", image_url="data:image/png;base64,AAAA")
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, sel)
    soup = soup_of(rendered.html)
    assert soup.select_one("h2.headline a") is None
    assert "javascript:" not in rendered.html and "data:image" not in rendered.html
    assert soup.select("p.deep-look") == []


def test_placeholders_survive_mjml_and_premailer(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(1))
    for name in ("name", "email", "unsubscribe_url", "preferences_url"):
        assert TOKENS["html"][name] in rendered.html, name
        assert TOKENS["text"][name] in rendered.text, name
    assert not any(t in rendered.text for t in TOKENS["html"].values())
    assert not any(t in rendered.html for t in TOKENS["text"].values())
    soup = soup_of(rendered.html)
    assert soup.find("a", string="Unsubscribe")["href"] == TOKENS["html"]["unsubscribe_url"]


def test_personalization_escapes_for_each_context(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(1))
    reader = recipient(name='<b>"x"</b>')
    _, html, text = personalize(rendered, reader)
    assert '<b>"x"</b>' not in html
    assert "Hello &lt;b&gt;&#34;x&#34;&lt;/b&gt;," in html
    assert soup_of(html).select_one("p.greeting").get_text().startswith('Hello <b>"x"</b>,')
    assert soup_of(html).find_all("b") == []
    assert 'Hello <b>"x"</b>, here is' in text
    # The preferences URL has "&": escaped in HTML, raw in text.
    assert "tok.en-2_y?a=1&amp;b=2" in html and "tok.en-2_y?a=1&b=2" in text
    assert "{{digest:" not in html and "{{digest:" not in text


def test_name_fallback_and_header_context_rejects_line_breaks() -> None:
    assert pers.substitutions(recipient(name=None))[TOKENS["text"]["name"]] == pers.NAME_FALLBACK
    with pytest.raises(HeaderInjection):
        escape_for("header", "Pat\r\nBcc: victim@example.org")
    with pytest.raises(HeaderInjection):
        pers.substitutions(recipient(name="Pat\nReader"))
    assert escape_for("text", "<b>") == "<b>" and escape_for("html", "<b>") == "&lt;b&gt;"


def test_substitution_is_one_pass_and_content_cannot_inject_tokens(tmp_path: Path) -> None:
    reader = recipient(name=TOKENS["html"]["email"])
    assert pers.substitute("Hi {{digest:name:html}}", pers.substitutions(reader)) == "Hi " + TOKENS["html"]["email"]
    sel = selection(1, title="Read {{digest:email:html}} now")
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, sel)
    _, html, _ = personalize(rendered, reader)
    assert "Read { {digest:email:html}} now" in soup_of(html).select_one("h2.headline").get_text()


def test_subject_uses_template_and_stays_within_78_characters(tmp_path: Path) -> None:
    long_title = "Council " + " ".join(["approves"] * 30)
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(2, title=long_title))
    assert len(rendered.subject) <= SUBJECT_MAX
    # The default leads with the headline: the first ~35 characters a phone shows are the story's.
    assert rendered.subject.startswith("Council approves approves")
    assert rendered.subject.endswith("…") and not rendered.subject.endswith(" …")
    custom = settings(tmp_path, subject_template="{{ date }} / {{ article_count }} stories\n/ {{ list_name }}")
    rendered = render_selection(custom, list_row(), EDITION_DATE, selection(3))
    assert rendered.subject == "2031-03-04 / 3 stories / The Springfield Ledger"
    assert rendered.preheader.startswith("Also today: " + article(2).title)


def test_utm_configurable_and_existing_query_kept(tmp_path: Path) -> None:
    off = render_selection(settings(tmp_path, utm={}), list_row(), EDITION_DATE, selection(1))
    assert soup_of(off.html).select_one("h2.headline a")["href"] == "https://ledger.example.org/news/footbridge-1?src=rss"
    mine = settings(tmp_path, utm={"utm_source": "ledger", "utm_campaign": "spring"})
    href = soup_of(render_selection(mine, list_row(), EDITION_DATE, selection(1)).html).select_one("h2.headline a")["href"]
    assert parse_qs(urlsplit(href).query) == {"src": ["rss"], "utm_source": ["ledger"], "utm_campaign": ["spring"]}


def test_theme_and_language_apply(tmp_path: Path) -> None:
    themed = settings(tmp_path, theme={"brand_name": "Ledger Morning", "primary_color": "#aa3300",
                                       "language": "de", "footer_text": "Fictional newsroom."})
    rendered = render_selection(themed, list_row(), EDITION_DATE, selection(1))
    soup = soup_of(rendered.html)
    assert soup.html["lang"] == "de"
    assert soup.select_one("h1.brand").get_text(strip=True) == "Ledger Morning"
    assert "#aa3300" in rendered.html
    assert "Fictional newsroom." in rendered.text


def test_empty_selection_renders_a_short_edition(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(0))
    assert rendered.article_count == 0
    assert "no new stories" in rendered.text.lower()
    assert rendered.subject == "The Springfield Ledger · Tue 4 Mar"


def test_render_is_cached_by_content_and_template_mtime(tmp_path: Path) -> None:
    s = settings(tmp_path)
    first = render_selection(s, list_row(), EDITION_DATE, selection(3))
    again = render_selection(s, list_row(), EDITION_DATE, selection(3))
    assert again.html is first.html  # served from the cache (a fresh render would build a new string)
    changed = render_selection(s, list_row(), EDITION_DATE, selection(3, summary="A different lede."))
    assert changed.key != first.key and "A different lede." in changed.html
    # A newsroom template edit invalidates the cache.
    folder = s.project_dir / "templates"
    folder.mkdir()
    source = (Path(__file__).resolve().parent.parent / "templates" / "_footer.mjml.j2").read_text(encoding="utf-8")
    (folder / "_footer.mjml.j2").write_text(source.replace("{{ postal_address }}", "Edited footer address"),
                                            encoding="utf-8")
    edited = render_selection(s, list_row(), EDITION_DATE, selection(3))
    assert edited.key != first.key and "Edited footer address" in edited.html
    path = folder / "_footer.mjml.j2"
    path.write_text(source.replace("{{ postal_address }}", "Second edit"), encoding="utf-8")
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 5_000_000))
    assert "Second edit" in render_selection(s, list_row(), EDITION_DATE, selection(3)).html


def test_byline_time_is_in_list_time_zone(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(timezone="America/New_York"), EDITION_DATE,
                                selection(1, published_at=datetime(2031, 3, 4, 3, 15, tzinfo=UTC)))
    byline = soup_of(rendered.html).select_one("p.byline").get_text(strip=True)
    assert re.search(r"3 Mar, 22:15 EST$", byline), byline
    same_day = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(1))
    assert soup_of(same_day.html).select_one("p.byline").get_text(strip=True).endswith("SPRINGFIELD · 06:15 CET")


def test_personal_subject_is_escaped_in_the_html_title(tmp_path: Path) -> None:
    s = settings(tmp_path, subject_template="{{ recipient.name }}: {{ top_headline }}")
    rendered = render_selection(s, list_row(), EDITION_DATE, selection(1))
    assert rendered.subject.startswith(TOKENS["header"]["name"])
    subject, html, _ = personalize(rendered, recipient(name="<script>x</script>"))
    assert subject.startswith("<script>x</script>: ")
    soup = soup_of(html)
    assert soup.find_all("script") == [] and soup.title.get_text().startswith("<script>x</script>: ")


def test_logo_replaces_the_brand_name_and_images_link_to_their_article(tmp_path: Path) -> None:
    plain = soup_of(render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(1)).html)
    assert plain.select_one("h1.brand").get_text(strip=True) == "The Springfield Ledger"
    logo_url = "https://ledger.example.org/logo.png"
    themed = settings(tmp_path, theme={"logo_url": logo_url})
    soup = soup_of(render_selection(themed, list_row(), EDITION_DATE, selection(1)).html)
    assert soup.select("h1.brand") == []  # README: the logo replaces the brand name at the top
    assert soup.find("img", src=logo_url)["alt"] == "The Springfield Ledger"
    photo = soup.find("img", src="https://ledger.example.org/img/bridge-1.jpg")
    link = photo.find_parent("a")
    assert link is not None and link["href"] == soup.select_one("h2.headline a")["href"]


def test_preheader_is_first_hidden_and_has_no_low_contrast_colour(tmp_path: Path) -> None:
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, selection(3))
    soup = soup_of(rendered.html)
    hidden = soup.select_one("div.preheader")
    assert hidden is not None
    assert hidden.get_text().startswith(rendered.preheader)
    # Nothing visible comes before it: it is what the inbox shows after the subject.
    before = hidden.find_all_previous(string=True)
    assert not any(s.strip() for s in before if s.find_parent(["body"]) is not None)
    style = hidden["style"].replace(" ", "")
    assert "display:none" in style and "opacity:0" in style
    # White-on-light hidden text is a spam signal (SpamAssassin's HTML_FONT_LOW_CONTRAST): no colour at all.
    assert "color" not in style


def test_a_subject_cut_never_leaves_half_a_reader_token(tmp_path: Path) -> None:
    # Text without spaces (here Japanese) is cut mid-run; a token stub must not survive into the header.
    s = settings(tmp_path, subject_template="{{ top_headline }}、{{ recipient.name }}")
    long_cut = render_selection(s, list_row(), EDITION_DATE, selection(1, title="議会" * 30))
    assert "{{" not in long_cut.subject and long_cut.subject.endswith("…")
    assert len(long_cut.subject) <= SUBJECT_MAX
    fits = render_selection(s, list_row(), EDITION_DATE, selection(1, title="議会" * 25))
    assert fits.subject.endswith(TOKENS["header"]["name"])
    assert personalize(fits, recipient(name="Pat"))[0].endswith("、Pat")
    braces = render_selection(settings(tmp_path, subject_template="{{ top_headline }}"), list_row(), EDITION_DATE,
                              selection(1, title="Use {{ braces }} wisely"))
    assert braces.subject == "Use {{ braces }} wisely"


def test_an_article_without_a_page_links_to_its_hosted_deep_look(tmp_path: Path) -> None:
    # Newslooks text carries no URL: the headline and "Read the Deep Look" go to `digest serve`'s article page.
    chosen = selection(2)
    chosen.items[0].article.url = None
    chosen.items[1].article.url = None
    chosen.items[1].article.sections = []
    chosen.items[1].article.deep_look_title = None
    rendered = render_selection(settings(tmp_path, base_url="https://news.example.org/"), list_row(),
                                EDITION_DATE, chosen)
    soup = soup_of(rendered.html)
    hosted = urlsplit(soup.select("h2.headline a")[0]["href"])
    assert (hosted.scheme, hosted.netloc, hosted.path) == ("https", "news.example.org",
                                                           f"/articles/{chosen.items[0].article.id}")
    assert "utm_source" in parse_qs(hosted.query)
    assert any(a.get_text(strip=True).startswith("Read the Deep Look") and "/articles/" in a["href"]
               for a in soup.select("a"))
    # Nothing to read beyond the Quick Looks: no link at all rather than an empty page.
    second = soup.select("h2.headline")[1]
    assert second.select_one("a") is None


def test_quick_looks_never_repeat_the_lede_above_them(tmp_path: Path) -> None:
    # Derived Quick Looks start with the lede's own sentences (feeds, Newslooks text without bullets): the email
    # shows the lede once, and leaves the Quick Looks out when they would only say it again.
    lede = "The council voted on Monday to fund the footbridge. Work starts in May, the mayor said."
    chosen = selection(2)
    first, second = chosen.items[0].article, chosen.items[1].article
    first.summary = lede
    first.quick_looks = ["The council voted on Monday to fund the footbridge.", "Work starts in May, the mayor said.",
                         "The bridge will cost about 4 million in city funds."]
    first.quick_looks_derived = True
    second.summary = lede
    second.quick_looks = ["the council voted on Monday to fund the footbridge"]
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen)
    soup = soup_of(rendered.html)
    lists = soup.select("ul.quick-looks")
    assert len(lists) == 1
    assert [li.get_text(strip=True) for li in lists[0].find_all("li")] == [
        "The bridge will cost about 4 million in city funds."]
    assert len(soup.select("p.ql-title")) == 1
    # The text part too: each lede once (both articles share it here), one Quick Looks block.
    assert rendered.text.count("Work starts in May") == 2 and rendered.text.count("Quick Looks:") == 1


def test_an_image_without_alt_text_is_named_by_its_headline(tmp_path: Path) -> None:
    # Feeds rarely describe their images; the image links to the article, so the headline names it.
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE,
                                selection(1, image_alt=None, title="Harbour ferry adds a late crossing"))
    img = soup_of(rendered.html).find("img", src="https://ledger.example.org/img/bridge-1.jpg")
    assert img["alt"] == "Harbour ferry adds a late crossing"


def test_french_quotes_and_punctuation_stay_with_their_words(tmp_path: Path) -> None:
    # Feeds such as Le Monde's send plain spaces inside « » and before ":": a narrow column must not break
    # there and start a line with "»" or ":". A French article is typeset the French way in any email: a
    # no-break space before ":", narrow ones inside « » and before "?" (digest.i18n.typography).
    chosen = selection(1, title="Bac : comment préparer l’oral", summary="Un « coup sévère » pour la ville ?",
                       quick_looks=["Le maire l’a dit : « Nous continuerons » à aider."], language="fr")
    rendered = render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen)
    soup = soup_of(rendered.html)
    assert soup.select_one("h2.headline").get_text(strip=True) == "Bac\u00a0: comment préparer l’oral"
    assert soup.select_one("p.lede").get_text(strip=True) == "Un «\u202fcoup sévère\u202f» pour la ville\u202f?"
    assert soup.select_one("ul.quick-looks li").get_text(strip=True) == (
        "Le maire l’a dit\u00a0: «\u202fNous continuerons\u202f» à aider.")
    assert "Un «\u202fcoup sévère\u202f» pour la ville\u202f?" in rendered.text


def test_the_read_on_link_names_a_deep_look_only_where_there_is_one(tmp_path: Path) -> None:
    chosen = selection(2)
    chosen.items[1].article.deep_look_title = None  # a feed item: body text, no Deep Look of its own
    soup = soup_of(render_selection(settings(tmp_path), list_row(), EDITION_DATE, chosen).html)
    labels = [p.get_text(" ", strip=True) for p in soup.select("p.deep-look")]
    assert labels == ["Read the Deep Look: How the vote came together", "Read the full story"]
