"""Who is due for which edition at a given instant: a pure function of the moment and the stored state.

Rules (the README's "Scheduling" section is the user-facing version):

- Each subscriber's schedule is the list's schedule read in the subscriber's own zone: their ``timezone`` and
  ``send_time`` override the list's, the days (weekday, day of month, month) come from the list's cron.
- **Edition identity.** An occurrence belongs to the edition dated with the subscriber's *local date* of that
  occurrence. Every reader therefore gets "the Tuesday 10 March edition" on their own Tuesday 10 March morning:
  one edition per list per scheduled day, the same edition (frozen when its first delivery goes out) for a reader
  in Auckland and one in New York.
- Only the most recent occurrence counts, and only while it is at most ``catch_up`` old: a scheduler that was down
  sends the last missed edition once, and nothing older.
- A subscriber gets an occurrence only if it falls after they became active (``active_since``): no backlog.
- A subscriber who already has a finished delivery for that edition is not due again.
- Lists that require approval: the edition is built when its day's first occurrence falls due and waits until it
  is approved; if it is not approved within ``catch_up`` of the list's own send time for that date, it is skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from typing import Any, Literal

from digest.schedule.cron import Schedule, ScheduleError, parse_schedule, parse_time, zone

Action = Literal["send", "build", "await_approval", "skip_unapproved"]


@dataclass(frozen=True)
class ListInfo:
    id: int
    name: str
    timezone: str
    send_time: str
    schedule: str | None = None
    require_approval: bool = False


@dataclass(frozen=True)
class SubscriberInfo:
    """An active, unpaused subscriber. ``active_since`` None means "active since forever" (no newcomer rule)."""

    id: int
    list_id: int
    active_since: datetime | None
    timezone: str | None = None
    send_time: str | None = None


@dataclass(frozen=True)
class EditionState:
    """What is stored about a list's edition for a date: whether it exists, is approved, or is off."""

    list_id: int
    date: date
    edition_id: int | None = None
    approved: bool = False
    # Skipped for good (not approved in time, or skipped by the send): nobody gets this date any more.
    closed: bool = False
    done: frozenset[int] = frozenset()  # subscribers with a finished delivery
    frozen: bool = False  # its articles are fixed (built for approval, or its first delivery went out)


@dataclass(frozen=True)
class DueSubscriber:
    id: int
    send_at: datetime  # UTC instant of their occurrence


@dataclass
class DueEdition:
    list_id: int
    list_name: str
    date: date
    action: Action
    send_at: datetime | None  # the list's own occurrence for this date (UTC), which the approval deadline uses
    deadline: datetime | None  # approval lists: skipped if not approved by then
    edition_id: int | None = None
    subscribers: list[DueSubscriber] = field(default_factory=list)

    @property
    def subscriber_ids(self) -> list[int]:
        return [s.id for s in self.subscribers]


@dataclass(frozen=True)
class Resolved:
    """A subscriber's (or a list's) effective schedule and zone."""

    schedule: Schedule
    tz: tzinfo
    tz_name: str


def list_schedule(lst: ListInfo) -> Resolved:
    sched = parse_schedule(lst.schedule, lst.send_time, field=f"list {lst.name!r}: schedule")
    return Resolved(sched, zone(lst.timezone, f"list {lst.name!r}: timezone"), lst.timezone)


def subscriber_schedule(base: Resolved, sub: SubscriberInfo) -> Resolved:
    """The list's schedule in the subscriber's zone at the subscriber's time. A stored value that no longer parses
    (say, a zone removed from the tz database) falls back to the list's, rather than dropping the reader."""
    sched, tz, tz_name = base.schedule, base.tz, base.tz_name
    if sub.timezone:
        try:
            tz, tz_name = zone(sub.timezone), sub.timezone
        except ScheduleError:
            pass
    if sub.send_time:
        try:
            sched = sched.with_time(parse_time(sub.send_time))
        except ScheduleError:
            pass
    return Resolved(sched, tz, tz_name)


def plan_due(
    now: datetime,
    lists: Iterable[ListInfo],
    subscribers: Iterable[SubscriberInfo],
    editions: Mapping[tuple[int, date], EditionState],
    catch_up: timedelta,
) -> list[DueEdition]:
    """Every (list, date) with something to do at ``now``, in list then date order."""
    if now.tzinfo is None:
        raise ValueError("plan_due needs a timezone-aware now")
    by_list: dict[int, list[SubscriberInfo]] = {}
    for sub in subscribers:
        by_list.setdefault(sub.list_id, []).append(sub)
    earliest = now - catch_up
    out: list[DueEdition] = []
    for lst in sorted(lists, key=lambda x: x.name):
        base = list_schedule(lst)
        groups: dict[date, list[DueSubscriber]] = {}
        # Readers share a handful of (zone, time) settings: resolve each once, not once per reader.
        hits: dict[tuple[str | None, str | None], tuple[Resolved, tuple[date, datetime] | None]] = {}
        for sub in by_list.get(lst.id, []):
            key = (sub.timezone, sub.send_time)
            if key not in hits:
                own = subscriber_schedule(base, sub)
                hits[key] = own, own.schedule.latest_between(earliest, now, own.tz)
            own, hit = hits[key]
            if hit is None:
                continue
            day, at = hit
            if sub.active_since is not None and at <= sub.active_since:
                continue
            state = editions.get((lst.id, day))
            if state is not None and (state.closed or sub.id in state.done):
                continue
            groups.setdefault(day, []).append(DueSubscriber(sub.id, at))
        if lst.require_approval:
            # The list's own send time builds the edition for the editor even before any reader falls due.
            own_hit = base.schedule.latest_between(earliest, now, base.tz)
            if own_hit is not None:
                state = editions.get((lst.id, own_hit[0]))
                if state is None or not state.closed:
                    groups.setdefault(own_hit[0], [])
            # A built edition left unapproved past its deadline is closed (and reported) even if no reader is due.
            for (list_id, day), state in editions.items():
                if list_id != lst.id or day in groups or state.edition_id is None or state.approved or state.closed:
                    continue
                list_at = base.schedule.occurrence_on(day, base.tz)
                if list_at is not None and now > list_at + catch_up:
                    groups[day] = []
        for day in sorted(groups):
            out.append(_decide(now, lst, base, day, groups[day], editions.get((lst.id, day)), catch_up))
    return out


def _decide(now: datetime, lst: ListInfo, base: Resolved, day: date, due: list[DueSubscriber],
            state: EditionState | None, catch_up: timedelta) -> DueEdition:
    due.sort(key=lambda s: (s.send_at, s.id))
    list_at = base.schedule.occurrence_on(day, base.tz)
    if list_at is None:  # only when the local date does not exist in the list's zone
        list_at = min((s.send_at for s in due), default=None)
    edition_id = state.edition_id if state else None
    if not lst.require_approval:
        return DueEdition(lst.id, lst.name, day, "send", list_at, None, edition_id, due)
    deadline = list_at + catch_up if list_at is not None else None
    approved = state is not None and state.approved
    action: Action
    if approved:
        action = "send"
    elif deadline is not None and now > deadline:
        action = "skip_unapproved"
    elif edition_id is None or not (state is not None and state.frozen):
        action = "build"  # also an edition someone created early (`digest rank`) but nobody froze yet
    else:
        action = "await_approval"
    return DueEdition(lst.id, lst.name, day, action, list_at, deadline, edition_id, due)


# --- what is coming: `digest schedule ls` ------------------------------------------------------------------


@dataclass
class UpcomingGroup:
    send_at: datetime
    date: date
    timezone: str
    subscribers: int

    def to_json(self) -> dict[str, Any]:
        return {"send_at": self.send_at, "date": self.date.isoformat(), "timezone": self.timezone,
                "subscribers": self.subscribers}


@dataclass
class ListOutlook:
    list_name: str
    schedule: str
    timezone: str
    require_approval: bool
    next_run: datetime | None  # the list's own next send time
    next_date: date | None
    groups: list[UpcomingGroup]
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"list": self.list_name, "schedule": self.schedule, "timezone": self.timezone,
                "require_approval": self.require_approval, "next_run": self.next_run,
                "next_date": self.next_date.isoformat() if self.next_date else None,
                "groups": [g.to_json() for g in self.groups], "error": self.error}


def upcoming(now: datetime, lists: Iterable[ListInfo], subscribers: Iterable[SubscriberInfo],
             editions: Mapping[tuple[int, date], EditionState] | None = None) -> list[ListOutlook]:
    """Per list: its own next send time, and each subscriber's next send grouped by instant. With ``editions``,
    a subscriber who already has that date's edition (sent by hand, say), or whose date is closed, is not counted:
    the scheduler would not send it to them."""
    by_list: dict[int, list[SubscriberInfo]] = {}
    for sub in subscribers:
        by_list.setdefault(sub.list_id, []).append(sub)
    out: list[ListOutlook] = []
    for lst in sorted(lists, key=lambda x: x.name):
        try:
            base = list_schedule(lst)
        except ScheduleError as exc:
            out.append(ListOutlook(lst.name, lst.schedule or f"daily {lst.send_time}", lst.timezone,
                                   lst.require_approval, None, None, [], str(exc)))
            continue
        nxt = base.schedule.next_after(now, base.tz)
        counts: dict[tuple[datetime, date, str], int] = {}
        nexts: dict[tuple[str | None, str | None], tuple[Resolved, tuple[date, datetime] | None]] = {}
        for sub in by_list.get(lst.id, []):
            key = (sub.timezone, sub.send_time)
            if key not in nexts:
                own = subscriber_schedule(base, sub)
                nexts[key] = own, own.schedule.next_after(now, own.tz)
            own, hit = nexts[key]
            state = editions.get((lst.id, hit[0])) if editions is not None and hit is not None else None
            if state is not None and (state.closed or sub.id in state.done):
                continue
            if hit is not None:
                group = (hit[1], hit[0], own.tz_name)
                counts[group] = counts.get(group, 0) + 1
        groups = [UpcomingGroup(at, day, tz, n) for (at, day, tz), n in sorted(counts.items())]
        out.append(ListOutlook(lst.name, base.schedule.label, lst.timezone, lst.require_approval,
                               nxt[1] if nxt else None, nxt[0] if nxt else None, groups))
    return out
