"""Derived Quick Looks, sentence splitting, topic rules and canonical URLs: the pure helpers of ingest."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.errors import ConfigError
from digest.ingest.quicklooks import derive_quick_looks
from digest.ingest.topics import assign_topics, parse_rules
from digest.ingest.urls import absolute_http_url, canonical_url
from digest.models import Article

BODY = [
    "PORT ALDER — The council approved the harbor budget early on Tuesday after a long night of debate.",
    "The budget restores library hours across all five branches of the city library.",
    "Officials said the ferry terminal would cost $38 million over three years.",
    "Critics said: the ferry terminal is too expensive",  # no full stop, ends a line mid-thought
    "ok.",  # too short to be a bullet
    ("The ferry terminal budget was the longest debate of the night, lasting more than three hours in total "
     "as council members argued about borrowing, interest rates, the timing of the tax question, the state of "
     "the old pier, and whether the harbor master should report to the council or to the mayor."),  # too long
    "The harbor budget also funds storm drain repairs along the waterfront.",
    "Library advocates celebrated the budget vote outside city hall.",
]


def test_derived_quick_looks_are_the_bodys_own_whole_sentences_never_the_lede() -> None:
    lede = "The harbor budget passed 7–2."
    bullets = derive_quick_looks("Council Passes Harbor Budget", lede, BODY, language="en")
    assert 2 <= len(bullets) <= 5
    source = " ".join(BODY)
    assert all(b in source for b in bullets)  # extractive: never words the outlet did not write
    assert lede not in bullets  # the card shows the lede already
    assert "The council approved the harbor budget early on Tuesday after a long night of debate." in bullets
    assert not any(b.startswith("PORT ALDER") for b in bullets)  # the dateline is not part of the sentence
    assert not any("too expensive" in b or b == "ok." or "lasting more than" in b for b in bullets)
    positions = [source.index(b) for b in bullets]
    assert positions == sorted(positions)  # in the story's order


def test_no_quick_looks_rather_than_one_or_a_cut_one() -> None:
    # Was "at least one bullet": the lede repeated, the headline, or a sentence cut with "…". Now none.
    assert derive_quick_looks("T", "One clean sentence of the lede is here.", []) == []
    assert derive_quick_looks("Only A Headline", None, []) == []
    assert derive_quick_looks("T", None, ["word " * 60]) == []
    assert derive_quick_looks("T", None, ["The harbor budget also funds storm drain repairs along the front."]) == []


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60).filter(str.strip), st.none() | st.text(max_size=300), st.lists(st.text(max_size=200)))
def test_derivation_gives_none_or_two_to_five_bullets(title: str, summary: str | None,
                                                      paragraphs: list[str]) -> None:
    bullets = derive_quick_looks(title, summary, paragraphs)
    assert bullets == [] or 2 <= len(bullets) <= 5
    assert all(isinstance(b, str) for b in bullets)


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
    summary = "La mairie ouvre une salle d’étude pour les élèves du quartier."
    body = ["« Les élèves de la ville ne sont pas oubliés, a dit le maire Paul Vidal devant 40 parents.",
            "La salle d’étude ouvre le mercredi après-midi pour tous les élèves du quartier de la Gare.",
            "« Nous ouvrons la bibliothèque chaque soir », a déclaré la directrice Anne Roux lundi.",
            "La ville paie les nouvelles lampes de la salle de lecture sur son propre budget de 2024."]
    bullets = derive_quick_looks("Une salle d’étude", summary, body, language="fr")
    assert not any(b.startswith("« Les élèves") for b in bullets)  # its quotation is never closed
    assert all(b.count("«") == b.count("»") for b in bullets)
    assert "« Nous ouvrons la bibliothèque chaque soir », a déclaré la directrice Anne Roux lundi." in bullets
    assert "La salle d’étude ouvre le mercredi après-midi pour tous les élèves du quartier de la Gare." in bullets
