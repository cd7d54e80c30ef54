"""Editions: a list's issue for one date, its window of articles, its frozen pool, its variants.

Shared by rank, send, schedule, the desk and the preview. The rules:

- The **cut-off** of an edition is the list's ``send_time`` on its date in the list's time zone.
- Its **window** is [start, end): start is where the previous edition that went out (froze, and was not
  skipped or cancelled) ended, or the cut-off minus ``first_edition_lookback_hours`` when none did; end is the
  cut-off, or the moment the edition froze if that was earlier.
- **Freezing** (when the first delivery goes out) stores the ids of the window's articles in ``pool``; from then
  on every selection of the edition, including a variant first needed hours later, comes from that pool.
- Articles recorded as sent by an earlier edition of the same list (``edition_articles``) are never candidates.

One job per module, in the order they depend on each other (each imports only those above it):

- ``dates``: which date is upcoming and when an edition is cut off (the calendar; reads only).
- ``window``: the [start, end) an edition covers, which depends on the editions that went out before it.
- ``history``: what the list already delivered (``edition_articles``): the one writer,
  ``record_sent_articles``, and its readers (already sent, the stories recently told).
- ``lifecycle``: the edition row from draft (window kept up to date) to frozen (pool fixed), and the
  candidates each state offers (``candidate_pool``).
- ``selection``: ranking the edition for one reader: the list's ranking settings, the ranker with the desk's
  overrides, the labelled ``Selection``. The only part of ranking that touches the store.
- ``variants``: the distinct selections the list's readers get (``variants_for_list``) and the stored variant
  row of each (``get_or_create_variant``).

Every name is re-exported here, so ``from digest import editions; editions.select_for(...)`` keeps working;
new code may import from the module that does the job.
"""

from __future__ import annotations

from digest.editions.dates import cutoff_for, local_today, parse_send_time, upcoming_date
from digest.editions.history import (
    StoryMemory,
    record_sent_articles,
    remembered_stories,
    sent_by_other_editions,
)
from digest.editions.lifecycle import candidate_pool, freeze, get_or_create_edition
from digest.editions.selection import (
    NEARBY,
    effective_preferences,
    engagement_for,
    rank_settings_for,
    ranker_for,
    select_for,
    stamp,
)
from digest.editions.variants import VariantGroup, get_or_create_variant, variants_for_list
from digest.editions.window import NOT_SENT_STATUSES, window_end, window_start

__all__ = [
    "NEARBY",
    "NOT_SENT_STATUSES",
    "StoryMemory",
    "VariantGroup",
    "candidate_pool",
    "cutoff_for",
    "effective_preferences",
    "engagement_for",
    "freeze",
    "get_or_create_edition",
    "get_or_create_variant",
    "local_today",
    "parse_send_time",
    "rank_settings_for",
    "ranker_for",
    "record_sent_articles",
    "remembered_stories",
    "select_for",
    "sent_by_other_editions",
    "stamp",
    "upcoming_date",
    "variants_for_list",
    "window_end",
    "window_start",
]
