"""Ranking at scale: 10,000 candidate articles, one story often told by several outlets, ranked for 1,000
distinct preference profiles, against a naive implementation (all-pairs similarity, full re-scoring per profile).

The articles are synthetic and fictional: words drawn from a made-up vocabulary with a fixed seed, so every run
ranks the same set. The naive all-pairs similarity runs side by side with ours on the same n articles (it is the
slow part of a run: tens of seconds at 10,000) and must find the same pairs; the naive per-profile re-scoring,
linear in the number of profiles, is timed on a sample of profiles and extrapolated, as its ``extra`` says.
"""

from __future__ import annotations

import gc
import itertools
import random
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.harness import BenchResult, peak_memory, scaled, timed
from digest.config import Settings, default_values
from digest.models import Article
from digest.rank import dedupe
from digest.rank.score import RankSettings, norm_topic, ordered_topics, primary_topic, score
from digest.rank.select import Ranker

NOW = datetime(2031, 3, 4, 7, 0, tzinfo=UTC)
TOPICS = [f"topic{i:02d}" for i in range(20)]
OUTLETS = [f"Fictional Outlet {i}" for i in range(12)]
NAIVE_PROFILE_SAMPLE = 10
NAIVE_PAIRS_SAMPLE = 2_000


def synthetic_articles(n: int, seed: int = 20310304) -> list[Article]:
    """Stories of 20-40 made-up words; about a third are retold by 2-4 outlets with a word or two changed."""
    rng = random.Random(seed)
    vocabulary = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") for _ in range(3))
                  for _ in range(4000)]
    articles: list[Article] = []
    story = 0
    while len(articles) < n:
        words = rng.choices(vocabulary, k=rng.randrange(20, 41))
        topics = sorted(set(rng.sample(TOPICS, rng.choice((1, 1, 2)))))
        copies = rng.choice((1, 1, 1, 2, 3, 4))
        hours = rng.uniform(0, 24)
        for c in range(min(copies, n - len(articles))):
            text = words[:]
            edits = rng.randrange(1, 3) if c else 0  # the first outlet's copy is the original
            for _ in range(edits):
                text[rng.randrange(len(text))] = rng.choice(vocabulary)
            articles.append(Article(
                id=f"s{story:05d}-{c}", title=" ".join(text[:9]).capitalize(), summary=" ".join(text[9:]),
                outlet=rng.choice(OUTLETS), published_at=NOW - timedelta(hours=hours + c * 0.5), topics=topics,
                quick_looks=[" ".join(text[:6])] if rng.random() < 0.5 else []))
        story += 1
    return articles


def profiles(count: int) -> list[tuple[str, ...]]:
    """``count`` distinct preference profiles: every 1-, 2- and 3-topic combination, in a fixed shuffled order."""
    combos = [c for k in (1, 2, 3) for c in itertools.combinations(TOPICS, k)]
    random.Random(7).shuffle(combos)
    return combos[:count]


def settings() -> RankSettings:
    return RankSettings.from_settings(Settings(default_values(), Path(".")))


def ours(articles: Sequence[Article], profile_list: Sequence[tuple[str, ...]], rs: RankSettings
         ) -> tuple[Ranker, list[list[str]]]:
    ranker = Ranker(articles, settings=rs, now=NOW)
    return ranker, [ranker.select(p, with_dropped=False).article_ids for p in profile_list]


def naive_select(articles: Sequence[Article], labels: Sequence[int], rs: RankSettings,
                 profile: tuple[str, ...]) -> list[str]:
    """Score every article for the profile, sort, walk: what one would write without the shared precomputation."""
    scored = []
    for i, article in enumerate(articles):
        total, _ = score(article, now=NOW, rs=rs, preferences=profile)
        stamp = article.published_at.timestamp() if article.published_at else float("-inf")
        scored.append((-total, -stamp, article.id, i))
    scored.sort()
    seen: set[int] = set()
    chosen: list[str] = []
    per_topic: Counter[str] = Counter()
    prefs = frozenset(norm_topic(t) for t in profile)
    for _, _, article_id, i in scored:
        if labels[i] in seen:
            continue
        seen.add(labels[i])
        primary = primary_topic(ordered_topics(articles[i].topics), rs, prefs)
        if len(chosen) < rs.max_articles and (primary is None or per_topic[primary] < rs.max_per_topic):
            chosen.append(article_id)
            if primary is not None:
                per_topic[primary] += 1
    return chosen


def run() -> list[BenchResult]:
    n = scaled(10_000)
    profile_list = profiles(scaled(1_000))
    articles = sorted(synthetic_articles(n), key=lambda a: a.id)
    rs = settings()

    gc.collect()
    (ranker, selections), total_s = timed(lambda: ours(articles, profile_list, rs))
    _, dedupe_s = timed(lambda: dedupe.cluster_labels(articles, rs.duplicate_threshold))
    gc.collect()
    _, peak = peak_memory(lambda: ours(articles, profile_list, rs))
    variants = len({tuple(s) for s in selections})
    stories = len(set(ranker.story))

    # Naive all-pairs similarity: run in full up to NAIVE_PAIRS_SAMPLE articles, else on the first that many
    # and extrapolated quadratically (the weighted similarity costs more per pair than a set intersection, and
    # 50 million of them would take minutes). Ours runs on the same sample to check it finds the same pairs.
    maps = [dedupe.terms(a) for a in articles]
    sample = maps[:NAIVE_PAIRS_SAMPLE]
    naive_pairs, naive_sample_s = timed(lambda: dedupe.naive_similar_pairs(sample, rs.duplicate_threshold))
    scale = (len(maps) * (len(maps) - 1)) / max(1, len(sample) * (len(sample) - 1))
    naive_dedupe_s = naive_sample_s * scale
    lsh_pairs = dedupe.similar_pairs(sample, rs.duplicate_threshold)
    checked = len(dedupe.candidate_pairs(maps, rs.duplicate_threshold))
    # Naive re-scoring of all n articles on a sample of profiles, extrapolated linearly to every profile.
    sampled_profiles = list(profile_list[:NAIVE_PROFILE_SAMPLE])
    naive_sel, naive_rank_s = timed(lambda: [naive_select(ranker.articles, ranker.story, rs, p)
                                             for p in sampled_profiles])
    agree = naive_sel == selections[:len(sampled_profiles)]
    naive_total_s = naive_dedupe_s + naive_rank_s * len(profile_list) / len(sampled_profiles)

    extra_common = {"profiles": len(profile_list), "stories_found": stories, "variants": variants}
    return [
        BenchResult(
            "rank_profiles", total_s, "s", naive_total_s, naive_total_s / total_s, n,
            extra={**extra_common, "dedupe_seconds": round(dedupe_s, 3),
                   "per_profile_ms": round((total_s - dedupe_s) / len(profile_list) * 1000, 3),
                   "peak_memory_mb": round(peak / 1e6, 1),
                   "baseline": (f"naive all-pairs similarity ({naive_dedupe_s:.2f} s: {naive_sample_s:.2f} s on "
                                f"{len(sample)} articles, x{scale:.0f} for all {n}); "
                                f"naive re-scoring timed on {len(sampled_profiles)} profiles ({naive_rank_s:.2f} s) "
                                f"and extrapolated linearly to {len(profile_list)}"),
                   "naive_selections_agree": agree}),
        BenchResult(
            "rank_dedupe", dedupe_s, "s", naive_dedupe_s,
            naive_dedupe_s / dedupe_s, n,
            extra={"baseline": (f"all-pairs exact weighted similarity, run side by side on {len(sample)} of the "
                                f"{n} articles and extrapolated by the number of pairs (x{scale:.0f})"),
                   "same_pairs_as_all_pairs_on_sample": lsh_pairs == naive_pairs, "pairs_on_sample": len(naive_pairs),
                   "pairs_checked": checked, "pairs_checked_all_pairs": n * (n - 1) // 2}),
        BenchResult("rank_peak_memory", peak / 1e6, "MB", None, None, n,
                    extra={"measured": "Python heap peak via tracemalloc, whole run (dedupe + every profile)"}),
        *cluster_quality(rs),
    ]


def cluster_quality(rs: RankSettings) -> list[BenchResult]:
    """Pair precision and recall of the story grouping on the labelled fictional fixture
    (tests/fixtures/story_clusters.json): retellings of one event by other outlets, and distractors that share
    its names. The baseline is the word-shingle Jaccard grouping that came before (2-word shingles of headline
    and lede at 0.5), run on the same articles."""
    from tests.cluster_support import load, pair_scores

    fixture = load()
    ours_scores = pair_scores(fixture, dedupe.cluster_labels(fixture.articles, rs.duplicate_threshold))
    before = pair_scores(fixture, _shingle_labels(fixture.articles))
    extra = {"fixture": "tests/fixtures/story_clusters.json (fictional)", "articles": len(fixture.articles),
             "true_pairs": ours_scores.true_pairs, "found_pairs": ours_scores.found_pairs,
             "distractors_merged": ours_scores.distractors_merged, "threshold": rs.duplicate_threshold,
             "baseline": "2-word shingle Jaccard >= 0.5 of headline and lede (the grouping before this change)"}
    return [
        BenchResult("rank_cluster_precision", ours_scores.precision, "ratio", before.precision,
                    ours_scores.precision / before.precision if before.precision else None, len(fixture.articles),
                    extra=extra),
        BenchResult("rank_cluster_recall", ours_scores.recall, "ratio", before.recall,
                    ours_scores.recall / before.recall if before.recall else None, len(fixture.articles),
                    extra={"baseline_distractors_merged": before.distractors_merged, **extra}),
    ]


def _shingle_labels(articles: Sequence[Article]) -> list[int]:
    words = [dedupe.words_of(dedupe.story_text(a)) for a in articles]
    sets = [{" ".join(w[i:i + 2]) for i in range(len(w) - 1)} for w in words]
    labels = list(range(len(articles)))
    for i, j in itertools.combinations(range(len(articles)), 2):
        if sets[i] and sets[j] and len(sets[i] & sets[j]) / len(sets[i] | sets[j]) >= 0.5:
            old, new = max(labels[i], labels[j]), min(labels[i], labels[j])
            labels = [new if lab == old else lab for lab in labels]
    return labels
