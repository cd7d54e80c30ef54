"""A list's schedule: which local days it runs on and at what local time, turned into exact UTC instants.

Two spellings are accepted: a five-field cron expression (``0 7 * * 1-5``; also ``@daily``, ``@weekly``,
``@monthly``, ``@yearly``) or ``daily HH:MM``. A list without a schedule runs daily at its ``send_time``.

digest sends one edition per list per day, so a schedule must name exactly one time of day (one minute, one
hour); the day fields (day of month, month, day of week) may be anything cron allows, parsed by croniter.

Local times are resolved against the IANA zone of the reader, day by day, so daylight-saving changes never
double or drop a send: a time that does not exist that day (clocks spring forward over it) is sent at the next
valid minute, and a time that occurs twice (clocks fall back) is sent at its first occurrence.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from croniter.croniter import CroniterError

from digest.errors import DigestError
from digest.timeutil import resolve_local

_DAILY = re.compile(r"^daily\s+(\d{1,2}:\d{2})$", re.IGNORECASE)
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_ALIASES = {
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
# How far ahead `next_after` looks before giving up (a schedule such as `0 7 30 2 *` never runs).
_MAX_YEARS_AHEAD = 9


class ScheduleError(DigestError):
    """A schedule, time of day or time zone that cannot be used; the message names the field and the value."""

    exit_code = 2


def parse_time(text: str, field: str = "send_time") -> time:
    """``HH:MM`` (24-hour clock) as a time of day."""
    match = _TIME.match(text.strip()) if isinstance(text, str) else None
    if match is None or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ScheduleError(f"{field}: {text!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


@lru_cache(maxsize=512)
def zone(name: str, field: str = "timezone") -> ZoneInfo:
    """The IANA time zone ``name`` (e.g. ``Europe/Paris``)."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"{field}: {name!r} is not an IANA time zone (e.g. Europe/London, America/New_York)"
                            ) from None


@dataclass(frozen=True)
class Schedule:
    """When a list runs: the local days ``days`` (cron's last three fields; None: every day) at local ``at``."""

    at: time
    days: str | None = None
    expression: str | None = None  # the cron expression as stored on the list; None for "daily HH:MM"

    @property
    def label(self) -> str:
        return self.expression if self.expression else f"daily {self.at:%H:%M}"

    def with_time(self, at: time) -> Schedule:
        """The same days at another local time: what a subscriber's own send_time makes of the list's schedule."""
        return replace(self, at=at)

    def runs_on(self, day: date) -> bool:
        if self.days is None:
            return True
        return bool(croniter.match(f"0 0 {self.days}", datetime.combine(day, time())))

    def occurrence_on(self, day: date, tz: tzinfo) -> datetime | None:
        """The UTC instant of this schedule's send on local ``day`` in ``tz``, or None if it does not run that day."""
        if not self.runs_on(day):
            return None
        return resolve_local(day, self.at, tz)

    def days_from(self, first: date) -> Iterator[date]:
        """The local days this schedule runs on, from ``first`` (included) onwards."""
        if self.days is None:
            day = first
            while True:
                yield day
                day += timedelta(days=1)
        it = croniter(f"0 0 {self.days}", datetime.combine(first - timedelta(days=1), time()),
                      max_years_between_matches=_MAX_YEARS_AHEAD)
        while True:
            try:
                yield it.get_next(datetime).date()
            except CroniterError:
                return

    def latest_between(self, start: datetime, end: datetime, tz: tzinfo) -> tuple[date, datetime] | None:
        """The last send in [start, end], as (local date, UTC instant), or None when there is none."""
        first = start.astimezone(tz).date() - timedelta(days=1)
        last = end.astimezone(tz).date() + timedelta(days=1)
        found: tuple[date, datetime] | None = None
        day = first
        while day <= last:
            at = self.occurrence_on(day, tz)
            if at is not None and start <= at <= end and (found is None or at > found[1]):
                found = (day, at)
            day += timedelta(days=1)
        return found

    def next_after(self, now: datetime, tz: tzinfo) -> tuple[date, datetime] | None:
        """The first send strictly after ``now``, as (local date, UTC instant); None if the schedule never runs."""
        for day in self.days_from(now.astimezone(tz).date() - timedelta(days=1)):
            at = resolve_local(day, self.at, tz)
            if at > now:
                return day, at
        return None


def parse_schedule(text: str | None, send_time: str = "07:00", field: str = "schedule") -> Schedule:
    """A list's schedule from its ``schedule`` column (cron, ``daily HH:MM`` or empty) and its ``send_time``."""
    if text is None or not text.strip():
        return Schedule(at=parse_time(send_time))
    text = " ".join(text.split())
    daily = _DAILY.match(text)
    if daily:
        return Schedule(at=parse_time(daily.group(1), field))
    expanded = _ALIASES.get(text.lower(), text)
    fields = expanded.split(" ")
    if len(fields) != 5:
        raise ScheduleError(f"{field}: {text!r} is neither a five-field cron expression (minute hour day-of-month "
                            "month day-of-week, e.g. '0 7 * * 1-5') nor 'daily HH:MM'")
    try:
        parsed, _ = croniter.expand(expanded)
    except (CroniterError, ValueError) as exc:
        raise ScheduleError(f"{field}: {text!r} is not a valid cron expression: {exc}") from None
    minutes, hours = parsed[0], parsed[1]
    if len(minutes) != 1 or len(hours) != 1 or not isinstance(minutes[0], int) or not isinstance(hours[0], int):
        raise ScheduleError(f"{field}: {text!r} names several times a day; digest sends one edition per list per "
                            "day, so the minute and hour fields must each be a single number (e.g. '30 6 * * *')")
    days = " ".join(fields[2:])
    return Schedule(at=time(hours[0], minutes[0]), days=None if days == "* * *" else days, expression=text)
