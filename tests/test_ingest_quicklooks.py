"""Derived Quick Looks: whole sentences of the article, worth reading on their own, in five languages, or none.

The stories below are fictional, written for these tests; the shared feeds are real (../shared, never copied).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.ingest.clean import squash
from digest.ingest.feeds import parse_feed
from digest.ingest.pipeline import finish
from digest.ingest.quicklooks import (
    MAX_BULLETS,
    MIN_BULLETS,
    derive_quick_looks,
    is_clean_sentence,
    split_sentences,
)

# What a bullet must never be: the site talking, a live blog's clock, a question to the reader.
JUNK_BULLET = re.compile(
    r"tip-?offs?|@\w|pic\.twitter|https?://|\bwww\.|\b(free|our) (news )?(app|newsletter|podcast)|"
    r"email briefing|sign up|subscribe|abonnez|abonnieren|assine|suscr[ií]b|newsletter|"
    r"continue reading|read more|lire (la suite|aussi)|weiterlesen|leia mais|leer más|"
    r"\b\d{1,2}[.:]\d{2}\s?(am|pm)\b|\b\d{1,2}[.:]\d{2}\s?(gmt|bst|utc|cet)\b|\bupdated at\b|"
    r"\?|¿|…|\.\.\.",
    re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!][\"'”’»“)\]]*$")
# What may stand before a sentence in its paragraph: nothing, another sentence's end, or a dateline's dash.
SENTENCE_START = re.compile(r"(^|[.!?…][\"'”’»“)\]]*\s|[—–-]\s)$")


def _whole_sentences(bullets: list[str], paragraphs: list[str]) -> None:
    """Each bullet is a sentence of one paragraph as written: found there whole, starting where a sentence
    starts, ending with a full stop, its quotation marks balanced."""
    texts = [squash(p) for p in paragraphs]
    for bullet in bullets:
        homes = [t for t in texts if bullet in t]
        assert homes, f"not in the text: {bullet!r}"
        assert any(SENTENCE_START.search(t[:t.index(bullet)]) for t in homes), f"starts mid-sentence: {bullet!r}"
        assert SENTENCE_END.search(bullet), f"does not end a sentence: {bullet!r}"
        assert bullet.count("«") == bullet.count("»"), bullet
        assert bullet.count("“") == bullet.count("”") + bullet.count("„"), bullet
        assert bullet.count('"') % 2 == 0, bullet


def _check(bullets: list[str], good: list[str], paragraphs: list[str]) -> None:
    assert MIN_BULLETS <= len(bullets) <= MAX_BULLETS, bullets
    assert set(bullets) <= set(good), set(bullets) - set(good)
    assert len(bullets) >= 3  # each story has four or five good sentences: most of them are chosen
    order = [good.index(b) for b in bullets]
    assert order == sorted(order)  # in the story's order
    _whole_sentences(bullets, paragraphs)


# Each story: (language, title, lede, paragraphs, the sentences a bullet may be). The others are what must never
# be one: a pronoun or connector opening, a question, a promotion, a clock, a sentence repeating the lede.
STORIES = {
    "en": ("en", "Gull Island Ferry Returns After Two Years",
           "The ferry between Port Alder and Gull Island runs again from Monday, the county said.",
           [("PORT ALDER — The county council voted 7–2 on Tuesday to restart the Gull Island ferry after a "
            "two-year pause for repairs."),
            ("The new vessel, built by Marlow Yards in Everett, carries 140 passengers and 22 cars. He said the "
            "crossing would take 35 minutes. But not everyone on the island is pleased with the timetable."),
            "What do you think of the new timetable?",
            "Get our free news app, morning email briefing or daily news podcast.",
            "Email Dana with any tip-offs or tweet: @DanaHarbor.",
            "10.32am GMT",
            ("Tickets cost $4.50 for adults, and islanders under 18 ride free, according to the county’s "
            "transport office."),
            ("“It is the best news the island has had in years,” said Mayor Ruth Okafor. "
            "The ferry between Port Alder and Gull Island runs again from Monday, the county said.")],
           [("The county council voted 7–2 on Tuesday to restart the Gull Island ferry after a two-year pause for "
            "repairs."),
            "The new vessel, built by Marlow Yards in Everett, carries 140 passengers and 22 cars.",
            ("Tickets cost $4.50 for adults, and islanders under 18 ride free, according to the county’s "
            "transport office."),
            "“It is the best news the island has had in years,” said Mayor Ruth Okafor."]),
    "fr": ("fr", "Le tramway de Villeneuve-sur-Lac rouvre après deux ans de travaux",
           "Le tramway de Villeneuve-sur-Lac reprend du service lundi, a annoncé la métropole.",
           [("La métropole a investi 48 millions d’euros dans la rénovation des 12 kilomètres de voies entre la "
            "gare et le campus."),
            ("M. Bernard Duval, président de la régie des transports, a inauguré la ligne samedi devant 300 "
            "habitants. Il a promis une rame toutes les six minutes aux heures de pointe. Mais les commerçants "
            "du centre-ville restent très inquiets pour leur chiffre d’affaires."),
            "Qu’en pensez-vous ?",
            "Abonnez-vous à notre newsletter pour recevoir toute l’actualité de la région.",
            ("« Nous avons enfin retrouvé notre tramway », a déclaré Mme Claire Fontaine, qui habite le quartier "
            "depuis 1998."),
            "Lire aussi : le chantier du siècle",
            "10h32",
            ("Selon la régie, la fréquentation devrait atteindre 40 000 voyageurs par jour d’ici à la fin de "
            "l’année.")],
           [("La métropole a investi 48 millions d’euros dans la rénovation des 12 kilomètres de voies entre la "
            "gare et le campus."),
            ("M. Bernard Duval, président de la régie des transports, a inauguré la ligne samedi devant 300 "
            "habitants."),
            ("« Nous avons enfin retrouvé notre tramway », a déclaré Mme Claire Fontaine, qui habite le quartier "
            "depuis 1998."),
            ("Selon la régie, la fréquentation devrait atteindre 40 000 voyageurs par jour d’ici à la fin de "
            "l’année.")]),
    "de": ("de", "Stadtbibliothek Lindenau öffnet nach Umbau wieder",
           "Die Stadtbibliothek Lindenau ist nach zwei Jahren Umbau wieder geöffnet, teilte die Stadt mit.",
           ["Der Umbau kostete nach Angaben der Stadtverwaltung rund 6,5 Mio. Euro und dauerte länger als geplant.",
            ("Dr. Hanna Keller, Leiterin der Bibliothek, stellte am Samstag die neuen Lesesäle mit 120 "
            "Arbeitsplätzen vor. Sie sagte, die Ausleihe sei künftig auch sonntags möglich. Außerdem gibt es "
            "im Keller einen neuen Makerspace für Schulklassen."),
            "Was halten Sie davon?",
            "Jetzt abonnieren: Der Newsletter für Lindenau und Umgebung.",
            ("„Wir wollen ein Wohnzimmer für die ganze Stadt sein“, sagte Bürgermeister Jonas Albrecht bei der "
            "Eröffnung."),
            "Aktualisiert um 14:05 Uhr",
            "Der Förderverein spendete 4.000 Bücher, darunter z. B. Kinderbücher in 14 Sprachen."],
           ["Der Umbau kostete nach Angaben der Stadtverwaltung rund 6,5 Mio. Euro und dauerte länger als geplant.",
            ("Dr. Hanna Keller, Leiterin der Bibliothek, stellte am Samstag die neuen Lesesäle mit 120 "
            "Arbeitsplätzen vor."),
            ("„Wir wollen ein Wohnzimmer für die ganze Stadt sein“, sagte Bürgermeister Jonas Albrecht bei der "
            "Eröffnung."),
            "Der Förderverein spendete 4.000 Bücher, darunter z. B. Kinderbücher in 14 Sprachen."]),
    "pt": ("pt", "Biblioteca municipal de Vila Serena reabre após reforma",
           "A biblioteca municipal de Vila Serena reabre nesta segunda-feira, informou a prefeitura.",
           [("A reforma custou R$ 3,2 milhões e ampliou o acervo para 45 mil livros, segundo a Secretaria de "
            "Cultura."),
            ("A Dra. Helena Moura, diretora da biblioteca, apresentou no sábado as novas salas de estudo com 80 "
            "lugares. Ela disse que o horário será estendido até as 22h. Mas os moradores do bairro pedem mais "
            "segurança nas ruas próximas."),
            "O que você acha da nova biblioteca?",
            "Baixe o nosso aplicativo e receba as notícias da cidade.",
            "“É um presente para a cidade inteira”, disse o prefeito Ricardo Alves durante a cerimônia.",
            "Leia mais: obras no centro",
            "O Sr. Antônio Lima, de 72 anos, frequenta a biblioteca desde a inauguração, em 1985."],
           [("A reforma custou R$ 3,2 milhões e ampliou o acervo para 45 mil livros, segundo a Secretaria de "
            "Cultura."),
            ("A Dra. Helena Moura, diretora da biblioteca, apresentou no sábado as novas salas de estudo com 80 "
            "lugares."),
            "“É um presente para a cidade inteira”, disse o prefeito Ricardo Alves durante a cerimônia.",
            "O Sr. Antônio Lima, de 72 anos, frequenta a biblioteca desde a inauguração, em 1985."]),
    "es": ("es", "El mercado central de Puerto Almena reabre tras dos años de obras",
           "El mercado central de Puerto Almena vuelve a abrir sus puertas este lunes, informó el ayuntamiento.",
           [("La rehabilitación costó 7,8 millones de euros y recuperó los 64 puestos originales del edificio de "
            "1932."),
            ("La Sra. Lucía Navarro, concejala de Comercio, inauguró el mercado el sábado ante cientos de vecinos. "
            "Ella explicó que el horario se ampliará los domingos. Sin embargo, algunos comerciantes critican el "
            "precio de los alquileres."),
            "¿Qué le parece el nuevo mercado?",
            "Suscríbete a nuestro boletín para recibir las noticias de la ciudad.",
            ("«Es el corazón del barrio y por fin late de nuevo», dijo el pescadero Andrés Gil, que trabaja allí "
            "desde 1990."),
            "Actualizado a las 10:32",
            ("El Dr. Tomás Ruiz, historiador local, recordó que el edificio fue diseñado por el arquitecto Manuel "
            "Rivas.")],
           [("La rehabilitación costó 7,8 millones de euros y recuperó los 64 puestos originales del edificio de "
            "1932."),
            "La Sra. Lucía Navarro, concejala de Comercio, inauguró el mercado el sábado ante cientos de vecinos.",
            ("«Es el corazón del barrio y por fin late de nuevo», dijo el pescadero Andrés Gil, que trabaja allí "
            "desde 1990."),
            ("El Dr. Tomás Ruiz, historiador local, recordó que el edificio fue diseñado por el arquitecto Manuel "
            "Rivas.")]),
}


@pytest.mark.parametrize("name", sorted(STORIES))
def test_each_language_gets_its_informative_sentences_and_none_of_the_junk(name: str) -> None:
    language, title, lede, paragraphs, good = STORIES[name]
    bullets = derive_quick_looks(title, lede, paragraphs, language=language)
    _check(bullets, good, paragraphs)


@pytest.mark.parametrize(("language", "text", "sentences"), [
    ("en", ("J. Mansour reported from Washington. The U.S. president met Mr. Putin at 10 a.m. on Friday. "
           "“Next time in Moscow,” he said. Was it a joke? Nobody knew!"),
     ["J. Mansour reported from Washington.", "The U.S. president met Mr. Putin at 10 a.m. on Friday.",
      "“Next time in Moscow,” he said.", "Was it a joke?", "Nobody knew!"]),
    ("fr", "M. Dupont est arrivé le 3 janv. à Lyon. Il a dit « Bonjour. Ça va ? » et il est reparti.",
     ["M. Dupont est arrivé le 3 janv. à Lyon.", "Il a dit « Bonjour. Ça va ? » et il est reparti."]),
    ("de", ("Dr. Müller kam am 3. Januar nach Berlin. Er sagte: „Wir sind bereit. Morgen geht es los.“ "
           "Das kostet z. B. 5 Mio. Euro."),
     ["Dr. Müller kam am 3. Januar nach Berlin.", "Er sagte: „Wir sind bereit. Morgen geht es los.“",
      "Das kostet z. B. 5 Mio. Euro."]),
    ("pt", "A Dra. Souza chegou às 10h. Ele disse: “Estamos prontos. Amanhã começa.” O Sr. Silva não comentou.",
     ["A Dra. Souza chegou às 10h.", "Ele disse: “Estamos prontos. Amanhã começa.”", "O Sr. Silva não comentou."]),
    ("es", "La Sra. García llegó el lunes. Dijo: «Estamos listos. Mañana empieza». ¿Qué pasará?",
     ["La Sra. García llegó el lunes.", "Dijo: «Estamos listos. Mañana empieza».", "¿Qué pasará?"]),
])
def test_sentences_split_by_language_keep_titles_initials_and_quotations_whole(language: str, text: str,
                                                                               sentences: list[str]) -> None:
    assert split_sentences(text, language) == sentences


def test_too_little_text_for_two_good_bullets_gives_none() -> None:
    lede = "The county reopened the Gull Island ferry on Monday after two years of repairs."
    # Only the lede: a bullet would repeat it.
    assert derive_quick_looks("Ferry Returns", lede, []) == []
    assert derive_quick_looks("Ferry Returns", lede, [lede]) == []
    # One good sentence and the rest junk: one bullet is worse than none.
    assert derive_quick_looks("Ferry Returns", lede, [
        "The new vessel, built by Marlow Yards in Everett, carries 140 passengers and 22 cars.",
        "He said it would be busy. Sign up for our newsletter to get the island news first.",
        "Continue reading...", "Why does it matter to you?"], language="en") == []
    # A live blog's moments are not the story.
    assert derive_quick_looks("Harbor regatta – live!", lede, STORIES["en"][3], language="en") == []


def test_a_sentence_that_restates_the_lede_or_headline_is_not_a_bullet() -> None:
    lede = "The Gull Island ferry runs again from Monday after two years of repairs."
    body = ["The ferry to Gull Island runs again from Monday, after two years of repairs, the county said.",
            "The new vessel, built by Marlow Yards in Everett, carries 140 passengers and 22 cars.",
            "Tickets cost $4.50 for adults, and islanders under 18 ride free, the transport office said.",
            "Marlow Yards won the contract for the Gull Island ferry after a tender in 2021."]
    bullets = derive_quick_looks("Gull Island Ferry Returns From Monday", lede, body, language="en")
    assert bullets == body[1:]


# Sentence-shaped text with the traps real copy has: abbreviations and initials, quotations (some left open),
# handles, clocks, questions, pronoun openings, datelines, odd spacing; often enough good sentences for bullets.
_OPENERS = st.sampled_from(["The", "Officials", "Mayor Ruth Okafor", "Marlow Yards", "Mr. Putin", "J. Mansour",
                            "The U.S. Senate", "M. Dupont", "Dr. Müller", "He", "But", "Il", "Er", "Ela", "“We",
                            "« Nous", "„Wir", "10.32am GMT", "Email Nick", "Get our free news app", "PORT ALDER —",
                            "Asked why,", "In 2018,", "According to the county,", "Continue reading", "ok"])
_CLEAN_WORDS = ["council", "approved", "ferry", "terminal", "budget", "biathlon", "regatta", "Gull", "Island",
                "Everett", "$38", "million", "7–2", "on", "Tuesday", "after", "the", "a", "of", "library", "hours",
                "harbor", "Okafor", "repairs", "1,700", "sites", "Wembley", "crossing", "l’État", "d’euros",
                "ñandú", "Ökonom", "“quoted words”", "(in 2016)", "U.S.", "Dr. Keller", "St. Louis", "10 a.m.",
                "e.g. two", "z. B. drei", "«mots cités»", "„zitiert“", "—"]
_TRAP_WORDS = ["«", "»", "„", "“", '"', "(", "@NickAmes82", "tip-offs", "said he", "she", "?", "!", "…", ":"]
# Mostly clean words, now and then a trap (sampled_from has no weights: repetition is the weight).
_WORDS = st.sampled_from(_CLEAN_WORDS * 4 + _TRAP_WORDS)
_ENDS = st.sampled_from([".", ".", ".", ".”", "?", "!", "…", "", ":", " Continue reading..."])
_SENTENCE = st.builds(lambda opener, words, end: f"{opener} {' '.join(words)}{end}",
                      _OPENERS, st.lists(_WORDS, min_size=3, max_size=30), _ENDS)
_PARAGRAPH = st.builds(lambda sentences, glue: glue.join(sentences),
                       st.lists(_SENTENCE, min_size=1, max_size=4), st.sampled_from([" ", "  ", "\n", "\u00a0"]))


@settings(max_examples=300, deadline=None)
@given(title=st.text(max_size=60).filter(str.strip),
       summary=st.none() | _SENTENCE,
       paragraphs=st.lists(_PARAGRAPH | st.text(max_size=200), max_size=6),
       language=st.sampled_from([None, "en", "fr", "de", "pt", "es", "it", "nl"]))
def test_derived_quick_looks_of_any_text_are_whole_sentences_of_it(title: str, summary: str | None,
                                                                   paragraphs: list[str],
                                                                   language: str | None) -> None:
    bullets = derive_quick_looks(title, summary, paragraphs, language=language)
    assert bullets == [] or MIN_BULLETS <= len(bullets) <= MAX_BULLETS
    assert len(set(bullets)) == len(bullets)
    _whole_sentences(bullets, paragraphs)
    assert not any(JUNK_BULLET.search(b) for b in bullets), bullets
    if summary:
        assert not any(b in squash(summary) for b in bullets)


def test_the_property_tests_text_does_yield_bullets() -> None:
    # Guard on the generator above: if it never produced Quick Looks, the property test would check nothing.
    found = []

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.lists(_PARAGRAPH, min_size=2, max_size=6))
    def collect(paragraphs: list[str]) -> None:
        found.append(bool(derive_quick_looks("A headline", None, paragraphs, language="en")))

    collect()
    assert sum(found) >= 10


FEEDS = sorted(["guardian_us_2018-01-31.rss", "talkingpointsmemo_all_2017-11-08.atom",
                "lemonde_une_2018-02-11.xml", "heise_developer_2016-02-01.atom"])


@pytest.mark.parametrize("name", FEEDS)
def test_real_feeds_get_no_junk_bullet_and_no_single_one(shared_dir: Path, name: str) -> None:
    path = shared_dir / "samples" / "feeds" / name
    articles = [finish(a, published=None, topics=(), rules=())
                for a in parse_feed(path.read_bytes(), source=str(path)).articles]
    assert articles
    with_bullets = 0
    for article in articles:
        bullets = article.quick_looks
        assert article.quick_looks_derived is bool(bullets)
        assert bullets == [] or MIN_BULLETS <= len(bullets) <= MAX_BULLETS, (article.title, bullets)
        with_bullets += bool(bullets)
        for bullet in bullets:
            assert not JUNK_BULLET.search(bullet), (article.title, bullet)
            assert bullet not in squash(article.summary or ""), (article.title, bullet)
            assert squash(bullet) != squash(article.title)
        _whole_sentences(bullets, [p for s in article.sections for p in s.paragraphs])
    if "talkingpointsmemo" in name:
        assert with_bullets >= len(articles) // 2  # full articles: most have enough for Quick Looks


@pytest.mark.parametrize(("name", "language"), [
    ("guardian_us_2018-01-31.rss", "en"), ("talkingpointsmemo_all_2017-11-08.atom", "en"),
    ("lemonde_une_2018-02-11.xml", "fr"), ("heise_developer_2016-02-01.atom", "de")])
def test_each_feed_article_knows_its_language(shared_dir: Path, name: str, language: str) -> None:
    # The Guardian and TPM say so (en-gb, en-US); Le Monde and heise do not, and are detected from the text.
    path = shared_dir / "samples" / "feeds" / name
    articles = [finish(a, published=None, topics=(), rules=())
                for a in parse_feed(path.read_bytes(), source=str(path)).articles]
    assert {a.language for a in articles} == {language}


@pytest.mark.parametrize(("language", "sentence"), [
    ("en", "He said the crossing would take thirty-five minutes in good weather."),
    ("en", "But not everyone on the island is pleased with the new timetable."),
    ("en", "Frightened but remaining calm, he alerted his superiors at the county office."),
    ("en", "As I sit in the Hampton Creek kitchen, a team of scientists works behind me."),
    ("en", "One of those scientists is the stem cell biologist Aparna Subramanian."),
    ("en", "“We are ready for the storm season this year,” he said on Monday."),
    ("en", "“We are ready for the storm season this year and the next.”"),
    ("en", "Email Nick with any tip-offs or tweet him at the usual address."),
    ("en", "Get our free news app, morning email briefing or daily news podcast."),
    ("en", "Latest updates from the 8pm kick-off at Wembley, 10.32am GMT."),
    ("en", "Christian Bale ate a single can of tuna a day for The Machinist!"),
    ("en", "What do you make of the council’s new ferry timetable this year?"),
    ("fr", "Il a promis une rame toutes les six minutes aux heures de pointe."),
    ("fr", "« Nous continuerons à frapper tous ceux qui tentent », a-t-il prévenu dimanche."),
    ("fr", "Abonnez-vous à notre newsletter pour recevoir toute l’actualité de la région."),
    ("de", "Er sagte, die Ausleihe sei künftig auch sonntags möglich."),
    ("de", "„Wir wollen ein Wohnzimmer für die Stadt sein“, sagte er bei der Eröffnung."),
    ("pt", "Ela disse que o horário da biblioteca será estendido até as dez."),
    ("pt", "No entanto, os moradores do bairro pedem mais segurança nas ruas."),
    ("es", "Sin embargo, algunos comerciantes critican el precio de los alquileres."),
    ("es", "Suscríbete a nuestro boletín para recibir las noticias de la ciudad."),
])
def test_sentences_that_need_context_or_are_the_site_talking_are_not_bullets(language: str, sentence: str) -> None:
    assert not is_clean_sentence(sentence, language)


@pytest.mark.parametrize(("language", "sentence"), [
    ("en", "Police dropped an investigation into Larry Nassar in 2004 after he told them it was treatment."),
    ("en", "Facebook has banned all advertising for cryptocurrencies because they are often scams."),
    ("en", "“We are live right now, and barely conscious,” said Stephen Colbert after the speech."),
    ("en", "Veterans of World War I gathered at the memorial on Tuesday morning."),
    ("en", "One person who was not aboard the train was killed, according to the authorities."),
    ("fr", "« Nous avons enfin retrouvé notre tramway », a déclaré Mme Claire Fontaine samedi."),
    ("fr", "De nombreux habitants ont assisté samedi à l’inauguration de la ligne."),
    ("de", "Das Unternehmen kündigte am Montag 300 neue Stellen in Leipzig an."),
    ("pt", "No sábado, a prefeitura apresentou as novas salas de estudo da biblioteca."),
    ("es", "Por la mañana, cientos de vecinos visitaron el mercado central reformado."),
])
def test_sentences_that_stand_on_their_own_are_bullets(language: str, sentence: str) -> None:
    assert is_clean_sentence(sentence, language)
