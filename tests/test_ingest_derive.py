"""Derived Quick Looks, sentence splitting, topic rules and canonical URLs: the pure helpers of ingest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import ConfigError
from digest.ingest.quicklooks import derive_quick_looks, split_sentences
from digest.ingest.topics import assign_topics, parse_rules
from digest.ingest.urls import absolute_http_url, canonical_url
from digest.models import Article


def test_sentences_do_not_end_at_abbreviations_or_initials() -> None:
    text = ("J. Mansour reported from Washington. The U.S. president met Mr. Putin at 10 a.m. on Friday. "
            "“Next time in Moscow,” he said. Was it a joke? Nobody knew!")
    assert split_sentences(text) == [
        "J. Mansour reported from Washington.", "The U.S. president met Mr. Putin at 10 a.m. on Friday.",
        "“Next time in Moscow,” he said.", "Was it a joke?", "Nobody knew!"]


BODY = [
    "PORT ALDER — The council approved the harbor budget early on Tuesday after a long night of debate.",
    "The budget restores library hours across all five branches of the city library.",
    "Officials said the ferry terminal would cost $38 million over three years.",
    "Critics said: the ferry terminal is too expensive",  # no full stop, ends a line mid-thought
    "ok.",  # too short to be a bullet
    ("The ferry terminal budget was the longest debate of the night, lasting more than three hours in total "
     "as council members argued about borrowing, interest rates, and the timing of the tax question again."),
    "The harbor budget also funds storm drain repairs along the waterfront.",
    "Library advocates celebrated the budget vote outside city hall.",
]


def test_derived_quick_looks_are_the_texts_own_clean_sentences() -> None:
    bullets = derive_quick_looks("Council Passes Harbor Budget", "The harbor budget passed 7–2.", BODY)
    assert 1 <= len(bullets) <= 5
    source = " ".join(["The harbor budget passed 7–2.", *BODY])
    assert all(b in source for b in bullets)  # extractive: never words the outlet did not write
    assert bullets[0] == "The harbor budget passed 7–2."  # the lede leads
    assert "The council approved the harbor budget early on Tuesday after a long night of debate." in bullets
    assert not any(b.startswith("PORT ALDER") for b in bullets)  # the dateline is not part of the sentence
    assert not any("too expensive" in b or b == "ok." or "lasting more than" in b for b in bullets)
    positions = [source.index(b) for b in bullets]
    assert positions == sorted(positions)  # in the story's order


def test_as_many_bullets_as_the_text_supports_and_at_least_one() -> None:
    assert derive_quick_looks("T", "One clean sentence of the lede is here.", []) == [
        "One clean sentence of the lede is here."]
    assert derive_quick_looks("Only A Headline", None, []) == ["Only A Headline"]
    long = "word " * 60
    [cut] = derive_quick_looks("T", long, [])
    assert cut.endswith("…") and len(cut.split()) <= 30


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60).filter(str.strip), st.none() | st.text(max_size=300), st.lists(st.text(max_size=200)))
def test_derivation_always_gives_between_one_and_five_bullets(title: str, summary: str | None,
                                                              paragraphs: list[str]) -> None:
    bullets = derive_quick_looks(title, summary, paragraphs)
    assert 1 <= len(bullets) <= 5 and all(isinstance(b, str) for b in bullets)


def test_topic_rules_and_their_order() -> None:
    rules = parse_rules([
        {"topic": "Politics", "categories": ["US politics", "Politik"]},
        {"topic": "sports", "keywords": ["marathon", "NBA"]},
        {"topic": "tech", "outlets": ["heise developer"]},
        {"topic": "art", "keywords": ["art"]},
    ])
    article = Article(id="x", title="City Marathon Draws Record Field", outlet="Sample Desk",
                      topics=["US Politics", "Local"], summary="An article about starting lines.")
    assign_topics(article, cli_topics=["Local News", "local news"], rules=rules)
    # Command line first, then rules in their order, then the source's categories; lower case, no repeats.
    assert article.topics == ["local news", "politics", "sports", "us politics", "local"]
    heise = Article(id="y", title="Release", outlet="Heise Developer")
    assign_topics(heise, rules=rules)
    assert heise.topics == ["tech"]  # "art" is a whole word only: "article", "starting" do not match


@pytest.mark.parametrize(("raw", "message"), [
    ({"topic": "x"}, "topic_rules"),
    ("politics", "must be a list"),
    ([{"keywords": ["a"]}], r"topic_rules\[0\].topic must be a non-empty string"),
    ([{"topic": "x", "keywords": "a"}, {"topic": "y", "outlets": [1]}], r"topic_rules\[1\].outlets must be a list"),
    ([{"topic": "x"}], r"topic_rules\[0\] \('x'\) needs at least one of keywords, outlets or categories"),
    ([{"topic": "x", "keyword": ["a"]}], r"topic_rules\[0\]: unknown field\(s\) keyword"),
])
def test_topic_rule_mistakes_name_the_rule_and_field(raw: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_rules(raw)


def test_urls_are_absolute_http_and_canonical() -> None:
    assert absolute_http_url("/a/b", None, "https://example.org/feed/") == "https://example.org/a/b"
    assert absolute_http_url("c", "https://example.org/feed/rss.xml") == "https://example.org/feed/c"
    assert absolute_http_url("javascript:alert(1)", "https://example.org/") is None
    assert absolute_http_url("/relative/only") is None
    assert absolute_http_url("https://example.org/long\n   /path") == "https://example.org/long/path"
    assert canonical_url("https://Example.org/x?id=7&utm_source=rss&xtor=RSS-1&wt_mc=a#top") == (
        "https://example.org/x?id=7")


def test_a_bullet_never_opens_a_quotation_it_does_not_close() -> None:
    # French «…» and German „…“ count as quotes too; a sentence split inside a quotation is a fragment.
    summary = ("« Les élèves de la ville ne sont pas oubliés. Au contraire, ils sont aidés » : la mairie ouvre "
               "une salle d’étude.")
    body = ["La salle d’étude ouvre le mercredi après-midi pour tous les élèves du quartier.",
            "„Wir öffnen die Bibliothek jeden Abend“, sagte die Leiterin am Montag.",
            "Die Stadt zahlt die neuen Lampen für den Lesesaal aus dem eigenen Haushalt."]
    bullets = derive_quick_looks("Une salle d’étude", summary, body)
    assert not any("«" in b or "»" in b for b in bullets)
    assert "„Wir öffnen die Bibliothek jeden Abend“, sagte die Leiterin am Montag." in bullets
    assert "La salle d’étude ouvre le mercredi après-midi pour tous les élèves du quartier." in bullets
