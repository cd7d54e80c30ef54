"""The pure scheduling rules: cron parsing, time zones, DST, catch-up, newcomers, weekdays, approval.

Every instant is fixed (no clock): `plan_due(now, ...)` is driven minute by minute where a day's behaviour matters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import pytest

from digest.schedule.cron import ScheduleError, parse_schedule, resolve_local, zone
from digest.schedule.due import (
    DueEdition,
    EditionState,
    ListInfo,
    SubscriberInfo,
    plan_due,
    upcoming,
)

SIX_HOURS = timedelta(hours=6)
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def local(tz: str, *args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=zone(tz), fold=fold).astimezone(UTC)


@dataclass
class World:
    """A scheduler's view of the store, updated as a real runner would after each pass."""

    lists: list[ListInfo]
    subscribers: list[SubscriberInfo]
    catch_up: timedelta = SIX_HOURS
    states: dict[tuple[int, date], EditionState] = field(default_factory=dict)
    sends: list[tuple[int, date, datetime]] = field(default_factory=list)  # (subscriber, edition date, when)

    def step(self, now: datetime) -> list[DueEdition]:
        plan = plan_due(now, self.lists, self.subscribers, self.states, self.catch_up)
        for item in plan:
            key = (item.list_id, item.date)
            state = self.states.get(key, EditionState(item.list_id, item.date))
            if item.action == "send":
                self.sends.extend((s.id, item.date, now) for s in item.subscribers)
                state = EditionState(item.list_id, item.date, edition_id=1, approved=state.approved,
                                     done=state.done | set(item.subscriber_ids))
            elif item.action == "build":
                state = EditionState(item.list_id, item.date, edition_id=1, frozen=True)
            elif item.action == "skip_unapproved":
                state = EditionState(item.list_id, item.date, edition_id=state.edition_id, closed=True)
            self.states[key] = state
        return plan

    def run(self, start: datetime, end: datetime, every: timedelta = timedelta(minutes=1)) -> None:
        now = start
        while now <= end:
            self.step(now)
            now += every


def one_list(tz: str = "UTC", send_time: str = "07:00", schedule: str | None = None,
             approval: bool = False) -> ListInfo:
    return ListInfo(1, "daily", tz, send_time, schedule, approval)


def sub(id_: int, tz: str | None = None, send_time: str | None = None,
        active_since: datetime | None = LONG_AGO) -> SubscriberInfo:
    return SubscriberInfo(id_, 1, active_since, tz, send_time)


# --- parsing -----------------------------------------------------------------------------------------------


def test_schedule_spellings() -> None:
    weekdays = parse_schedule("0 7 * * 1-5")
    assert weekdays.at == time(7, 0) and weekdays.days == "* * 1-5"
    assert weekdays.runs_on(date(2026, 3, 13)) and not weekdays.runs_on(date(2026, 3, 14))  # Fri yes, Sat no
    assert parse_schedule("daily 6:30").at == time(6, 30)
    assert parse_schedule(None, "08:15").at == time(8, 15)
    assert parse_schedule("  30   5 * *  mon-fri ").label == "30 5 * * mon-fri"
    assert parse_schedule("@weekly").runs_on(date(2026, 3, 15))  # a Sunday


@pytest.mark.parametrize("text, message", [
    ("0 7,19 * * *", "several times a day"),
    ("*/15 * * * *", "several times a day"),
    ("0 25 * * *", "not a valid cron expression"),
    ("0 7 * *", "neither a five-field cron expression"),
    ("0 0 7 * * *", "neither a five-field cron expression"),
    ("daily 24:00", "not a time of day"),
    ("every morning", "neither a five-field cron expression"),
])
def test_bad_schedules_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ScheduleError, match=message) as info:
        parse_schedule(text)
    assert str(info.value).startswith("schedule: ")


def test_unknown_zone_is_named() -> None:
    with pytest.raises(ScheduleError, match="'Mars/Olympus' is not an IANA time zone"):
        zone("Mars/Olympus")


# --- zones: the schedule is read in each subscriber's zone ------------------------------------------------

ZONES = [
    # zone, local date of the send, its UTC instant for 07:00 local
    ("Europe/Paris", date(2026, 3, 10), utc(2026, 3, 10, 6, 0)),
    ("America/New_York", date(2026, 3, 10), utc(2026, 3, 10, 11, 0)),
    ("Asia/Kolkata", date(2026, 3, 10), utc(2026, 3, 10, 1, 30)),
    ("Pacific/Auckland", date(2026, 3, 10), utc(2026, 3, 9, 18, 0)),  # NZDT, a day ahead of UTC
]


@pytest.mark.parametrize("tz, day, at", ZONES)
def test_each_subscriber_at_their_own_local_morning(tz: str, day: date, at: datetime) -> None:
    world = World([one_list("Europe/London")], [sub(1, tz)])
    assert world.step(at - timedelta(minutes=1)) == []  # the day before is a day old: nothing due
    world.step(at)
    assert world.sends[-1] == (1, day, at)
    assert world.step(at + timedelta(minutes=1)) == []  # sent once


@pytest.mark.parametrize("tz, day, at", ZONES)
def test_list_zone_applies_to_subscribers_without_their_own(tz: str, day: date, at: datetime) -> None:
    world = World([one_list(tz)], [sub(1)])
    world.run(at - timedelta(hours=2), at + timedelta(hours=2))
    assert [(s, d, w) for s, d, w in world.sends if d == day] == [(1, day, at)]


def test_auckland_and_new_york_get_the_same_dated_edition() -> None:
    """Edition identity is the reader's local date: both readers' 10 March mornings map to the 10 March edition."""
    world = World([one_list("America/New_York")], [sub(1, "Pacific/Auckland"), sub(2, "America/New_York")])
    world.run(utc(2026, 3, 9, 17, 30), utc(2026, 3, 10, 12, 0))  # after the 9th's catch-up window
    assert sorted((s, d) for s, d, _ in world.sends) == [(1, date(2026, 3, 10)), (2, date(2026, 3, 10))]
    by_sub = {s: when for s, _, when in world.sends}
    assert by_sub[1] == utc(2026, 3, 9, 18, 0) and by_sub[2] == utc(2026, 3, 10, 11, 0)


def test_subscriber_send_time_overrides_the_list_time() -> None:
    world = World([one_list("Europe/Paris", schedule="0 7 * * *")], [sub(1, "Asia/Kolkata", "05:45"), sub(2)])
    world.run(utc(2026, 3, 10, 0, 0), utc(2026, 3, 10, 8, 0))
    assert sorted((s, w) for s, _, w in world.sends) == [(1, utc(2026, 3, 10, 0, 15)), (2, utc(2026, 3, 10, 6, 0))]


def test_broken_subscriber_zone_falls_back_to_the_list() -> None:
    world = World([one_list("Europe/Paris")], [sub(1, "Not/AZone", "99:99")])
    world.run(utc(2026, 3, 10, 5, 0), utc(2026, 3, 10, 7, 0))
    assert [(s, w) for s, _, w in world.sends] == [(1, utc(2026, 3, 10, 6, 0))]


# --- daylight saving: every minute of both transition days, exactly one send ------------------------------

DST_CASES = [
    # zone, day, local send time, expected UTC instant (and why)
    ("Europe/Paris", date(2026, 3, 29), "07:00", utc(2026, 3, 29, 5, 0)),  # already CEST
    ("Europe/Paris", date(2026, 3, 29), "02:30", utc(2026, 3, 29, 1, 0)),  # gap: next valid minute, 03:00 CEST
    ("Europe/Paris", date(2026, 3, 29), "02:00", utc(2026, 3, 29, 1, 0)),  # gap start
    ("Europe/Paris", date(2026, 10, 25), "07:00", utc(2026, 10, 25, 6, 0)),  # back on CET
    ("Europe/Paris", date(2026, 10, 25), "02:30", utc(2026, 10, 25, 0, 30)),  # twice: first (CEST) only
    ("America/New_York", date(2026, 3, 8), "07:00", utc(2026, 3, 8, 11, 0)),  # EDT
    ("America/New_York", date(2026, 3, 8), "02:30", utc(2026, 3, 8, 7, 0)),  # gap: 03:00 EDT
    ("America/New_York", date(2026, 11, 1), "07:00", utc(2026, 11, 1, 12, 0)),  # EST
    ("America/New_York", date(2026, 11, 1), "01:30", utc(2026, 11, 1, 5, 30)),  # twice: first (EDT) only
]


@pytest.mark.parametrize("tz, day, send_time, expected", DST_CASES)
def test_dst_transition_days_send_exactly_once(tz: str, day: date, send_time: str, expected: datetime) -> None:
    world = World([one_list(tz, send_time)], [sub(1)])
    start = datetime.combine(day, time(0, 0), zone(tz)).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0, 0), zone(tz)).astimezone(UTC) - timedelta(minutes=1)
    world.run(start, end)  # 23, 24 or 25 hours of minutes
    assert world.sends == [(1, day, expected)]


@pytest.mark.parametrize("tz, day, send_time, expected", DST_CASES)
def test_dst_in_the_subscriber_zone_with_the_list_elsewhere(tz: str, day: date, send_time: str,
                                                            expected: datetime) -> None:
    world = World([one_list("Asia/Kolkata")], [sub(1, tz, send_time)])
    world.run(expected - timedelta(hours=3), expected + timedelta(hours=3), timedelta(minutes=1))
    assert world.sends == [(1, day, expected)]


def test_resolve_local_gap_and_fold() -> None:
    paris = zone("Europe/Paris")
    assert resolve_local(date(2026, 3, 29), time(2, 59), paris).astimezone(paris).strftime("%H:%M") == "03:00"
    assert resolve_local(date(2026, 3, 29), time(3, 0), paris).astimezone(paris).strftime("%H:%M") == "03:00"
    first = resolve_local(date(2026, 10, 25), time(2, 0), paris)
    assert first == local("Europe/Paris", 2026, 10, 25, 2, 0, fold=0) == utc(2026, 10, 25, 0, 0)


# --- down time and catch-up -------------------------------------------------------------------------------


def test_scheduler_down_for_hours_catches_up_once() -> None:
    world = World([one_list("Europe/Paris")], [sub(1), sub(2)])
    # Down from 06:00 to 10:00 Paris (the 07:00 send was missed): the first pass sends, later passes do not.
    world.run(utc(2026, 3, 10, 9, 0), utc(2026, 3, 10, 12, 0))
    assert sorted(world.sends) == [(1, date(2026, 3, 10), utc(2026, 3, 10, 9, 0)),
                                   (2, date(2026, 3, 10), utc(2026, 3, 10, 9, 0))]


def test_down_for_days_sends_only_the_most_recent_missed_edition() -> None:
    world = World([one_list("Europe/Paris")], [sub(1)], catch_up=timedelta(hours=30))
    # Down since the 8th; back on the 10th at 10:00: the 9th's 07:00 is within 30 h too, but only the 10th goes.
    world.step(utc(2026, 3, 10, 9, 0))
    world.step(utc(2026, 3, 10, 9, 5))
    assert world.sends == [(1, date(2026, 3, 10), utc(2026, 3, 10, 9, 0))]


def test_missed_send_older_than_catch_up_is_skipped() -> None:
    world = World([one_list("Europe/Paris")], [sub(1)])
    world.run(utc(2026, 3, 10, 12, 1), utc(2026, 3, 10, 23, 0), timedelta(minutes=7))  # 07:00 + 6 h has passed
    assert world.sends == []
    world.step(utc(2026, 3, 10, 12, 0))  # exactly catch_up_hours late still counts
    assert len(world.sends) == 1


def test_day_already_delivered_is_never_sent_again() -> None:
    states = {(1, date(2026, 3, 10)): EditionState(1, date(2026, 3, 10), edition_id=7, done=frozenset({1}))}
    plan = plan_due(utc(2026, 3, 10, 6, 30), [one_list("Europe/Paris")], [sub(1), sub(2)], states, SIX_HOURS)
    assert [(p.action, p.subscriber_ids, p.edition_id) for p in plan] == [("send", [2], 7)]


def test_closed_edition_sends_nothing() -> None:
    states = {(1, date(2026, 3, 10)): EditionState(1, date(2026, 3, 10), edition_id=7, closed=True)}
    assert plan_due(utc(2026, 3, 10, 6, 30), [one_list("Europe/Paris")], [sub(1)], states, SIX_HOURS) == []


# --- newcomers --------------------------------------------------------------------------------------------


def test_newcomers_get_no_backlog() -> None:
    joined = utc(2026, 3, 10, 6, 30)  # after the 10th's 07:00 Kolkata send (01:30Z), before the 11th's
    world = World([one_list("Asia/Kolkata")], [sub(1, active_since=joined), sub(2)])
    world.run(joined, utc(2026, 3, 11, 3, 0), timedelta(minutes=5))
    got = sorted((s, d) for s, d, _ in world.sends)
    # The older reader still catches up on the 10th (within catch_up_hours); the newcomer starts on the 11th.
    assert got == [(1, date(2026, 3, 11)), (2, date(2026, 3, 10)), (2, date(2026, 3, 11))]


def test_becoming_active_at_the_send_instant_is_too_late_for_it() -> None:
    at = utc(2026, 3, 10, 6, 0)
    plan = plan_due(at, [one_list("Europe/Paris")], [sub(1, active_since=at)], {}, SIX_HOURS)
    assert plan == []


# --- weekday-only schedules -------------------------------------------------------------------------------


def test_weekday_only_cron_in_each_zone() -> None:
    """Mon-Fri in each reader's own week: Auckland's Monday morning is still Sunday in UTC and New York."""
    world = World([one_list("America/New_York", schedule="0 7 * * 1-5")],
                  [sub(1, "Pacific/Auckland"), sub(2, "America/New_York"), sub(3, "Asia/Kolkata")])
    world.run(utc(2026, 3, 13, 0, 0), utc(2026, 3, 21, 0, 0), timedelta(minutes=5))  # Fri 13 to Sat 21
    by_sub: dict[int, list[str]] = {}
    for s, d, when in world.sends:
        by_sub.setdefault(s, []).append(d.strftime("%a %d"))
    weekdays = ["Mon 16", "Tue 17", "Wed 18", "Thu 19", "Fri 20"]
    assert by_sub[1] == ["Fri 13", *weekdays]
    assert by_sub[2] == ["Fri 13", *weekdays]
    assert by_sub[3] == ["Fri 13", *weekdays]
    auckland_monday = next(w for s, d, w in world.sends if s == 1 and d == date(2026, 3, 16))
    assert auckland_monday == utc(2026, 3, 15, 18, 0)  # Sunday in UTC


# --- approval ---------------------------------------------------------------------------------------------


def test_approval_gate_builds_waits_then_sends_once_approved() -> None:
    world = World([one_list("Europe/Paris", approval=True)], [sub(1), sub(2, "Europe/London")])
    day = date(2026, 3, 10)
    plan = world.step(utc(2026, 3, 10, 6, 0))  # the list's (and sub 1's) send time
    assert [(p.action, p.subscriber_ids) for p in plan] == [("build", [1])]
    assert plan[0].deadline == utc(2026, 3, 10, 12, 0)
    world.run(utc(2026, 3, 10, 6, 1), utc(2026, 3, 10, 8, 0))
    assert world.sends == []
    assert [(p.action, p.subscriber_ids) for p in world.step(utc(2026, 3, 10, 8, 1))] == [("await_approval", [1, 2])]
    world.states[(1, day)] = EditionState(1, day, edition_id=1, approved=True, frozen=True)  # editions approve
    world.run(utc(2026, 3, 10, 9, 0), utc(2026, 3, 10, 13, 0))
    assert sorted((s, d) for s, d, _ in world.sends) == [(1, day), (2, day)]


def test_unapproved_edition_is_skipped_after_catch_up_hours() -> None:
    world = World([one_list("Europe/Paris", approval=True)], [sub(1)])
    world.run(utc(2026, 3, 10, 5, 0), utc(2026, 3, 10, 12, 0))
    assert world.states[(1, date(2026, 3, 10))].edition_id == 1 and not world.states[(1, date(2026, 3, 10))].closed
    plan = world.step(utc(2026, 3, 10, 12, 1))
    assert [(p.action, p.date) for p in plan] == [("skip_unapproved", date(2026, 3, 10))]
    assert world.states[(1, date(2026, 3, 10))].closed
    world.run(utc(2026, 3, 10, 12, 2), utc(2026, 3, 10, 20, 0), timedelta(minutes=13))
    assert world.sends == []


def test_an_edition_created_early_but_not_frozen_is_built_for_approval() -> None:
    day = date(2026, 3, 10)
    lst = one_list("Europe/Paris", approval=True)
    early = {(1, day): EditionState(1, day, edition_id=4)}  # `digest rank` made a draft the evening before
    assert [(p.action, p.edition_id) for p in plan_due(utc(2026, 3, 10, 6, 0), [lst], [sub(1)], early, SIX_HOURS)
            ] == [("build", 4)]
    built = {(1, day): EditionState(1, day, edition_id=4, frozen=True)}
    assert [p.action for p in plan_due(utc(2026, 3, 10, 6, 0), [lst], [sub(1)], built, SIX_HOURS)] == [
        "await_approval"]


def test_approval_list_builds_at_its_own_time_even_with_no_reader_due() -> None:
    plan = plan_due(utc(2026, 3, 10, 6, 0), [one_list("Europe/Paris", approval=True)], [], {}, SIX_HOURS)
    assert [(p.action, p.date, p.subscriber_ids) for p in plan] == [("build", date(2026, 3, 10), [])]


def test_plan_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        plan_due(datetime(2026, 3, 10, 6, 0), [one_list()], [], {}, SIX_HOURS)


# --- what is coming ---------------------------------------------------------------------------------------


def test_upcoming_groups_subscribers_by_their_next_send() -> None:
    lists = [one_list("Europe/Paris", schedule="0 7 * * 1-5"),
             ListInfo(2, "broken", "Europe/Paris", "07:00", "0 7,8 * * *")]
    subs = [sub(1), sub(2), sub(3, "Pacific/Auckland"), sub(4, send_time="06:00")]
    out = {o.list_name: o for o in upcoming(utc(2026, 3, 13, 12, 0), lists, subs)}  # Friday noon UTC
    daily = out["daily"]
    assert daily.next_run == utc(2026, 3, 16, 6, 0) and daily.next_date == date(2026, 3, 16)
    assert [(g.send_at, g.date, g.subscribers) for g in daily.groups] == [
        (utc(2026, 3, 15, 18, 0), date(2026, 3, 16), 1),  # Auckland's Monday
        (utc(2026, 3, 16, 5, 0), date(2026, 3, 16), 1),
        (utc(2026, 3, 16, 6, 0), date(2026, 3, 16), 2),
    ]
    assert out["broken"].error and "several times a day" in out["broken"].error
