"""One story once: group articles that tell the same story, in well under quadratic time.

Each article becomes its weighted terms (``terms``: the lemmas of its headline and lede, rare words and names
weighing most, figures normalized). Two articles tell the same story when the weighted Jaccard similarity of
their terms reaches ``duplicate_threshold`` and, within an edition, they were published within
``STORY_HOURS`` of each other (the same council deciding again next week is news). A story is a connected group
of such pairs (union-find).

Finding the pairs: each article's terms become a set in which a term appears once per unit of its weight (a
rare word three times, a common one once), so the plain Jaccard similarity of two such sets approximates the
weighted one. MinHash signatures (datasketch) of those sets are cut into bands (locality-sensitive hashing),
which propose candidate pairs in about linear time; each proposed pair is then checked with the exact weighted
similarity, so the final decision is exact and deterministic and the bands only decide which pairs are worth
checking.

Which member of a group is shown depends on the reader's score, so grouping happens once per candidate set
and the choice of the kept article happens per profile in ``select``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache

import numpy as np
from datasketch import MinHash

from digest.models import Article
from digest.rank.terms import Terms, similarity, story_text, terms, terms_of_text, words_of

__all__ = ["STORY_HOURS", "candidate_pairs", "cluster_labels", "naive_similar_pairs", "retold", "similar_pairs",
           "similarity", "story_text", "terms", "terms_of_text",
           "words_of"]

# Two versions of one event are published within about a day of each other; 48 hours leaves room for a
# weekend and time zones. Story memory (``retold``) spans days on purpose and has no such limit.
STORY_HOURS = 48.0
# Candidates come from banded MinHash signatures: bands of BAND_ROWS values, and a pair is proposed when its
# signatures agree on at least MIN_BANDS bands. Two-row bands catch the low similarities of one story told in
# other words (a pair at the default threshold agrees on a band with probability about 0.06, on two or more of
# 128 bands with probability above 99.6%); asking for two bands, not one, is what keeps unrelated articles that
# happen to share a word or two from being proposed by the hundred thousand. Tuned for thresholds of 0.3 and up.
NUM_PERM = 256
BAND_ROWS = 2
MIN_BANDS = 2
# One copy of a term in the MinHash set per this much weight (rounded up): weights run from 0 to 4.
WEIGHT_UNIT = 1.0


@lru_cache(maxsize=1 << 18)
def _copies(term: str, weight: float) -> tuple[int, ...]:
    # crc32, not hash(): Python salts str hashes per process, and the candidates must not change between runs.
    key = term.encode("utf-8")
    return tuple(zlib.crc32(key + b"\x1f" + str(k).encode()) for k in range(max(1, math.ceil(weight / WEIGHT_UNIT))))


def _lsh_set(t: Terms) -> list[int]:
    return [h for term, weight in t.items() for h in _copies(term, weight)]


def _identity(value: int) -> int:
    return value


def cluster_labels(articles: Sequence[Article], threshold: float,
                   max_hours: float | None = STORY_HOURS) -> list[int]:
    """For each article, the index of the first article of its story (its own index when it stands alone).
    ``max_hours``: pairs published further apart are not the same story (``None``: no limit; an undated
    article is compared whatever its neighbour's date)."""
    term_maps = [terms(a) for a in articles]
    times = [a.published_at for a in articles] if max_hours is not None else None
    parent = list(range(len(articles)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in similar_pairs(term_maps, threshold, times=times, max_hours=max_hours):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(len(articles))]


def retold(candidates: Sequence[Article], told: Sequence[Article], threshold: float,
           context: Sequence[Article] = ()) -> dict[str, str]:
    """Candidates that tell a story the list already sent: candidate id -> the told article it retells.

    Stories are grouped as in ``cluster_labels`` over all the articles together, so a candidate joined to a told
    article only through another article is the same story too. ``context`` are articles that were not told
    but stood beside the told ones (an earlier edition's other candidates): the versions a told story was
    grouped with then, through which today's version of it is recognized. The told article named is the one
    with the smallest id in the group, so the answer does not depend on input order. No time limit: the memory
    is days long on purpose (``story_memory_days``).
    """
    if not candidates or not told:
        return {}
    told = sorted(told, key=lambda a: a.id)
    labels = cluster_labels([*candidates, *told, *context], threshold, max_hours=None)
    first_told: dict[int, str] = {}
    for index, article in enumerate(told, start=len(candidates)):
        first_told.setdefault(labels[index], article.id)
    return {article.id: first_told[labels[i]] for i, article in enumerate(candidates) if labels[i] in first_told}


def _close_in_time(times: Sequence[datetime | None] | None, max_hours: float | None, i: int, j: int) -> bool:
    if times is None or max_hours is None:
        return True
    a, b = times[i], times[j]
    return a is None or b is None or abs((a - b).total_seconds()) <= max_hours * 3600.0


def similar_pairs(term_maps: Sequence[Terms], threshold: float, *,
                  times: Sequence[datetime | None] | None = None,
                  max_hours: float | None = None) -> list[tuple[int, int]]:
    """Pairs (i < j) whose exact weighted similarity reaches ``threshold`` (and, given ``times`` and
    ``max_hours``, published close enough), found through MinHash LSH."""
    return [(i, j) for i, j in candidate_pairs(term_maps, threshold)
            if _close_in_time(times, max_hours, i, j) and similarity(term_maps[i], term_maps[j]) >= threshold]


def candidate_pairs(term_maps: Sequence[Terms], threshold: float) -> list[tuple[int, int]]:
    """The pairs (i < j, sorted) proposed for the exact check: about linear in the number of articles, not
    the n·(n-1)/2 an all-pairs comparison makes (a test and the benchmark count them). ``threshold`` is the one
    the pairs are checked against; the band layout is fixed (see ``BAND_ROWS``)."""
    del threshold  # the layout is tuned once for the thresholds in use, not per call
    indexed = [i for i, t in enumerate(term_maps) if t]
    if len(indexed) < 2:
        return []
    # The terms are hashed once each (``_copies``), so MinHash is given the hash values themselves.
    signatures = np.stack([m.hashvalues for m in MinHash.bulk([_lsh_set(term_maps[i]) for i in indexed],
                                                              num_perm=NUM_PERM, hashfunc=_identity)])
    n = len(indexed)
    codes: list[np.ndarray] = []
    for band in range(NUM_PERM // BAND_ROWS):
        # Hash values are below 2**32, so two of them make one 64-bit key with no collision.
        rows = signatures[:, band * BAND_ROWS:(band + 1) * BAND_ROWS]
        key = (rows[:, 0] << np.uint64(32)) | rows[:, 1]
        order = np.argsort(key, kind="stable")
        run = np.concatenate(([0], np.cumsum(key[order][1:] != key[order][:-1])))
        # Every pair inside a run of equal keys: the d-th neighbour in sorted order, d = 1, 2, ... until no run
        # is that long. Runs are short (a story's versions), so this loops a few times per band.
        for d in range(1, n):
            same = run[d:] == run[:-d]
            if not same.any():
                break
            a, b = order[:-d][same], order[d:][same]
            codes.append(np.minimum(a, b).astype(np.int64) * n + np.maximum(a, b))
    if not codes:
        return []
    unique, counts = np.unique(np.concatenate(codes), return_counts=True)
    kept = unique[counts >= MIN_BANDS]
    return sorted((indexed[int(c) // n], indexed[int(c) % n]) for c in kept)


def naive_similar_pairs(term_maps: Sequence[Terms], threshold: float, *,
                        times: Sequence[datetime | None] | None = None,
                        max_hours: float | None = None) -> list[tuple[int, int]]:
    """All-pairs exact similarity: the quadratic baseline the benchmark compares against (and tests check with)."""
    n = len(term_maps)
    return [(i, j) for i in range(n) for j in range(i + 1, n)
            if _close_in_time(times, max_hours, i, j) and similarity(term_maps[i], term_maps[j]) >= threshold]
