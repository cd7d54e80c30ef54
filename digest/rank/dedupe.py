"""One story once: group articles that tell the same story, in well under quadratic time.

Each article becomes a set of word shingles (runs of ``SHINGLE_WORDS`` words) of its headline and lede (its
summary; its Quick Looks only when it has no summary). MinHash signatures go into an LSH index (datasketch), which proposes candidate pairs in about linear
time; each proposed pair is then checked with the exact Jaccard similarity of the two shingle sets, so the
final decision is exact and deterministic and LSH only decides which pairs are worth checking. Pairs at or
above ``duplicate_threshold`` are joined (union-find): a story is a connected group of such pairs.

Which member of a group is shown depends on the reader's score, so grouping happens once per candidate set
and the choice of the kept article happens per profile in ``select``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from datasketch import MinHash, MinHashLSH

from digest.models import Article

# Two-word shingles: titles and summaries are short, and with longer shingles one changed word in a headline
# destroys too much of the overlap between two outlets' versions of the same story.
SHINGLE_WORDS = 2
NUM_PERM = 128
# LSH is asked for candidates a little below the real threshold and with its band layout tuned against false
# negatives (weights: false positives 0.1, false negatives 0.9): a pair just at the threshold is then proposed with
# a probability above 99%. The exact Jaccard check throws the extra candidates away.
LSH_SLACK = 0.8
LSH_WEIGHTS = (0.1, 0.9)

_WORD = re.compile(r"\w+", re.UNICODE)


def shingle_text(article: Article) -> str:
    # Headline and lede are what every format carries. Quick Looks are not compared when there is a lede: a
    # Newslooks article brings five bullets of its own that the feed version of the same story lacks, and those
    # extra shingles alone would pull the pair under the threshold.
    return " ".join([article.title or "", article.summary or " ".join(article.quick_looks)])


def shingles(text: str, k: int = SHINGLE_WORDS) -> frozenset[str]:
    words = _WORD.findall(text.casefold())
    if len(words) < k:
        return frozenset([" ".join(words)]) if words else frozenset()
    return frozenset(" ".join(words[i:i + k]) for i in range(len(words) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a or not b:
        return 0.0
    inter = len(a & b)
    return inter / (len(a) + len(b) - inter)


def cluster_labels(articles: Sequence[Article], threshold: float) -> list[int]:
    """For each article, the index of the first article of its story (its own index when it stands alone)."""
    sets = [shingles(shingle_text(a)) for a in articles]
    parent = list(range(len(articles)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in similar_pairs(sets, threshold):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return [find(i) for i in range(len(articles))]


def retold(candidates: Sequence[Article], told: Sequence[Article], threshold: float,
           context: Sequence[Article] = ()) -> dict[str, str]:
    """Candidates that tell a story the list already sent: candidate id -> the told article it retells.

    Stories are grouped as in ``cluster_labels`` over all the sets together, so a candidate joined to a told
    article only through another article is the same story too. ``context`` are articles that were not told
    but stood beside the told ones (an earlier edition's other candidates): the versions a told story was
    grouped with then, through which today's version of it is recognized. The told article named is the one
    with the smallest id in the group, so the answer does not depend on input order.
    """
    if not candidates or not told:
        return {}
    told = sorted(told, key=lambda a: a.id)
    labels = cluster_labels([*candidates, *told, *context], threshold)
    first_told: dict[int, str] = {}
    for index, article in enumerate(told, start=len(candidates)):
        first_told.setdefault(labels[index], article.id)
    return {article.id: first_told[labels[i]] for i, article in enumerate(candidates) if labels[i] in first_told}


def similar_pairs(sets: Sequence[frozenset[str]], threshold: float) -> list[tuple[int, int]]:
    """Pairs (i < j) whose exact Jaccard similarity reaches ``threshold``, found through MinHash LSH."""
    return [(i, j) for i, j in candidate_pairs(sets, threshold) if jaccard(sets[i], sets[j]) >= threshold]


def candidate_pairs(sets: Sequence[frozenset[str]], threshold: float) -> list[tuple[int, int]]:
    """The pairs (i < j, sorted) LSH proposes for the exact check: about linear in the number of sets, not the
    n·(n-1)/2 an all-pairs comparison makes (a test and the benchmark count them)."""
    indexed = [i for i, s in enumerate(sets) if s]
    if len(indexed) < 2:
        return []
    signatures = MinHash.bulk([[s.encode("utf-8") for s in sorted(sets[i])] for i in indexed], num_perm=NUM_PERM)
    lsh = MinHashLSH(threshold=max(0.05, threshold * LSH_SLACK), num_perm=NUM_PERM, weights=LSH_WEIGHTS)
    with lsh.insertion_session() as session:
        for i, sig in zip(indexed, signatures):
            session.insert(i, sig)
    pairs: list[tuple[int, int]] = []
    for i, sig in zip(indexed, signatures):
        pairs.extend((i, j) for j in lsh.query(sig) if j > i)
    pairs.sort()
    return pairs


def naive_similar_pairs(sets: Sequence[frozenset[str]], threshold: float) -> list[tuple[int, int]]:
    """All-pairs exact Jaccard: the quadratic baseline the benchmark compares against (and tests check with)."""
    return [(i, j) for i in range(len(sets)) for j in range(i + 1, len(sets))
            if jaccard(sets[i], sets[j]) >= threshold]
