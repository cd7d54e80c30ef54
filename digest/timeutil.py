"""Wall-clock times in a zone, resolved the same way everywhere (edition cut-offs and the scheduler)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from digest.errors import ConfigError


def resolve_local(day: date, at: time, tz: tzinfo) -> datetime:
    """The UTC instant of local wall time ``at`` on ``day`` in ``tz``.

    An ambiguous wall time (clocks fall back) resolves to its first occurrence; a wall time that does not exist
    (clocks spring forward over it) resolves to the next minute that does, i.e. the moment of the transition.
    """
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # In a gap, fold=1 reads the wall time with the offset after the transition (an instant before the gap) and
    # fold=0 with the offset before it (an instant after the gap); the transition lies between the two.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    if low > high:
        low, high = high, low
    lo, hi = 0, int((high - low).total_seconds() // 60) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        if (low + timedelta(minutes=mid)).astimezone(tz).replace(tzinfo=None) >= naive:
            hi = mid
        else:
            lo = mid + 1
    return low + timedelta(minutes=lo)


class _Zoned(Protocol):
    name: str
    timezone: str


def list_zone(list_row: _Zoned) -> ZoneInfo:
    """A list's time zone. Zones are checked when a list is created or scheduled, so an unknown one means the
    stored list was edited by hand: fail naming it, rather than silently send at UTC times."""
    try:
        return ZoneInfo(list_row.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"list {list_row.name!r}: unknown timezone {list_row.timezone!r}") from None
