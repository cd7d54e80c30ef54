"""An article's language: declared by its source (feed, JSON, Newslooks), else detected from its text.

The texts are fictional, written for these tests.
"""

from __future__ import annotations

import pytest

from digest.errors import ParseError
from digest.ingest.feeds import parse_feed
from digest.ingest.jsonl import parse_json
from digest.ingest.language import detect_language, primary_tag
from digest.ingest.pipeline import finish
from digest.models import Article, Section


@pytest.mark.parametrize(("tag", "primary"), [
    ("fr-FR", "fr"), ("pt-br", "pt"), ("en_US", "en"), ("EN", "en"), (" de ", "de"), ("es-419", "es"),
    ("", None), (None, None), ("English", None), ("fr--FR", None), ("12", None)])
def test_a_language_tag_keeps_its_primary_subtag(tag: str | None, primary: str | None) -> None:
    assert primary_tag(tag) == primary


@pytest.mark.parametrize(("language", "text"), [
    ("en", "The county council voted on Tuesday to restart the island ferry after two years of repairs."),
    ("fr", "Le conseil municipal a voté mardi la réouverture du tramway après deux ans de travaux."),
    ("de", "Der Stadtrat hat am Dienstag beschlossen, die Fähre nach zwei Jahren Reparatur wieder fahren zu lassen."),
    ("pt", "A câmara municipal aprovou na terça-feira a reabertura da biblioteca depois de dois anos de obras."),
    ("es", "El ayuntamiento aprobó el martes la reapertura del mercado central tras dos años de obras."),
    ("it", "Il consiglio comunale ha approvato martedì la riapertura della biblioteca dopo due anni di lavori."),
])
def test_the_six_languages_are_told_apart(language: str, text: str) -> None:
    assert detect_language(text) == language


def test_too_little_text_is_not_guessed() -> None:
    assert detect_language("Kubernetes 1.2 released") is None
    assert detect_language("") is None


def test_json_language_is_checked_and_kept_as_its_primary_tag() -> None:
    parsed = parse_json('[{"title": "Uma", "language": "pt-BR"}, {"title": "Two"}]', source="a.json")
    assert [a.language for a in parsed.articles] == ["pt", None]
    with pytest.raises(ParseError, match=r"item 1: field 'language' must be a BCP 47 language tag"):
        parse_json('[{"title": "Bad", "language": "Portuguese!"}]', source="b.json")
    with pytest.raises(ParseError, match="field 'language' must be a string or null"):
        parse_json('{"title": "Bad", "language": 7}', source="c.json")


def test_a_feed_declares_its_language_and_an_undeclared_one_is_detected() -> None:
    item = ("<item><title>Le tramway rouvre</title><link>https://example.org/a</link>"
            "<description>Le conseil municipal a voté mardi la réouverture du tramway après deux ans de "
            "travaux.</description></item>")
    declared = parse_feed(f'<rss version="2.0"><channel><title>T</title><language>fr-FR</language>{item}'
                          "</channel></rss>".encode(), source="f.rss")
    assert [a.language for a in declared.articles] == ["fr"]
    undeclared = parse_feed(f'<rss version="2.0"><channel><title>T</title>{item}</channel></rss>'.encode(),
                            source="g.rss")
    assert [a.language for a in undeclared.articles] == [None]
    assert finish(undeclared.articles[0], published=None, topics=(), rules=()).language == "fr"


def test_a_declared_language_is_believed_over_the_text() -> None:
    # A Portuguese newsroom's English edition says "en"; detection never second-guesses the source.
    article = Article(id="x", title="A câmara aprovou o orçamento", language="en",
                      sections=[Section(None, ["A câmara municipal aprovou na terça-feira o orçamento de 2024."])])
    assert finish(article, published=None, topics=(), rules=()).language == "en"
