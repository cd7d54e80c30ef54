"""Subject tests: a sample of an edition's readers split evenly among two or more subjects, the rest held until
``decide_after`` has passed, then sent the winner.

A subject is carried by a variant of its own: a copy of the content variant with that subject, so the dispatcher
and every backend send it as any other variant, and a reader's one delivery row (unique per edition and
subscriber) is what makes it impossible to get two subjects. The test moves rows only while they are not sent:

1. at the edition's first send (`at_plan`, once planning wrote the rows, before any send batch can be claimed), ``sample_percent`` of the planned
   deliveries, drawn at random, move to the subject variants in turn (an even split); the rest become ``held``,
   which no send touches; readers planned later are held too;
2. at a send once ``decide_after`` has passed since the draw (the next `digest send`, or the scheduler's pass,
   which runs one for every test due), the winner is the subject with the most unique clickers per sent message
   (human opens with ``metric = "opens"``; a tie goes to the first), and every held row moves to the winner's
   variant and back to ``pending`` in the same transaction that records the winner. A crash at any point leaves
   either the old state or the new one.
"""

from __future__ import annotations

import random
import re
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from digest.errors import DigestError
from digest.feedback.events import EventType
from digest.store.tables import DeliveryRow, EditionRow, EventRow, MailingListRow, SubjectTestRow, VariantRow

HELD = "held"
METRICS = ("clicks", "opens")
MAX_SUBJECT = 250
_DURATION = re.compile(r"(\d+)\s*([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
CHUNK = 1000


class SubjectTestError(DigestError):
    """A subject test that cannot be set up as asked (the message says why)."""

    exit_code = 2


def parse_duration(text: str) -> int:
    """Seconds in ``2h``, ``90m``, ``1h30m``, ``0s`` (a bare number is seconds)."""
    value = text.strip().lower()
    if value.isdigit():
        return int(value)
    parts = _DURATION.findall(value)
    if not parts or _DURATION.sub("", value).strip():
        raise SubjectTestError(f"--decide-after: {text!r} is not a duration (e.g. 2h, 90m, 1h30m, 0s)")
    return sum(int(n) * _UNITS[unit] for n, unit in parts)


def check_subject(raw: str) -> str:
    subject = " ".join(raw.split())
    if not subject or not raw.isprintable():
        raise SubjectTestError(f"--subject: {raw!r} must be one line of text")
    if len(subject) > MAX_SUBJECT:
        raise SubjectTestError(f"--subject: at most {MAX_SUBJECT} characters ({len(subject)} given)")
    return subject


def create(session: Session, edition: EditionRow, subjects: list[str], *, sample_percent: int,
           decide_after: int, metric: str) -> SubjectTestRow:
    """Set up (or, before its sample is drawn, replace) the edition's subject test."""
    clean = [check_subject(s) for s in subjects]
    if len(clean) < 2:
        raise SubjectTestError("a subject test needs at least two --subject")
    if len({s.casefold() for s in clean}) != len(clean):
        raise SubjectTestError("the subjects must differ")
    if not 1 <= sample_percent <= 100:
        raise SubjectTestError("--sample-percent must be between 1 and 100")
    if metric not in METRICS:
        raise SubjectTestError(f"--by must be one of {', '.join(METRICS)}")
    if edition.status in ("cancelled", "skipped", "sent"):
        raise SubjectTestError(f"edition {edition.id} is {edition.status}: it sends nothing more to test on")
    test = session.scalar(select(SubjectTestRow).where(SubjectTestRow.edition_id == edition.id))
    if test is not None and test.drawn_at is not None:
        raise SubjectTestError(f"edition {edition.id}'s subject test has drawn its sample already "
                               f"({test.drawn_at:%Y-%m-%d %H:%M} UTC); it cannot change now")
    if session.scalar(select(func.count()).select_from(DeliveryRow).where(
            DeliveryRow.edition_id == edition.id, DeliveryRow.status.not_in(["pending", "skipped"]))):
        raise SubjectTestError(f"edition {edition.id} has started sending: a subject test must be set before")
    if test is None:
        test = SubjectTestRow(edition_id=edition.id, variants={})
        session.add(test)
    test.subjects = clean
    test.sample_percent = sample_percent
    test.decide_after_seconds = decide_after
    test.metric = metric
    session.flush()
    return test


def test_of(session: Session, edition_id: int) -> SubjectTestRow | None:
    return session.scalar(select(SubjectTestRow).where(SubjectTestRow.edition_id == edition_id))


# --- the hook into a send -------------------------------------------------------------------------------------


def at_send(store: Any, edition_id: int, now: datetime) -> None:
    """Draw, hold, or release to the winner, in a transaction of its own (see `at_plan`)."""
    with store.session() as s:
        at_plan(s, edition_id, now)


def at_plan(session: Session, edition_id: int, now: datetime) -> None:
    """Called by planning once every row is written and before any of the edition's send batches can be claimed
    (in the transaction that opens them): draw, hold, or release to the winner."""
    test = session.scalar(select(SubjectTestRow).where(SubjectTestRow.edition_id == edition_id)
                          .with_for_update())
    if test is None:
        return
    if test.drawn_at is None:
        _draw(session, test, now)
    elif test.winner is None and now >= test.drawn_at + timedelta(seconds=test.decide_after_seconds):
        _decide(session, test, now)
    elif test.winner is None:
        _hold_newcomers(session, test, now)
    else:
        _to_winner(session, test, now, statuses=("pending",))


def _subject_variant(session: Session, test: SubjectTestRow, base_id: int, index: int, *, rest: bool = False) -> int:
    """The variant carrying subject ``index`` on content variant ``base_id``: one for the sample, and another for
    the winner's rest, so the sample's numbers stay the sample's."""
    key = f"{base_id}:{'rest' if rest else index}"
    found = (test.variants or {}).get(key)
    if found is not None:
        return int(found)
    base = session.get(VariantRow, base_id)
    assert base is not None
    tag = "winner" if rest else f"subject{index}"
    copy = VariantRow(edition_id=base.edition_id, key=f"{base.key[:48]}~{tag}",
                      article_ids=list(base.article_ids or []), subject=test.subjects[index], preheader=base.preheader,
                      html=base.html, text=base.text, render_hash=f"{(base.render_hash or str(base.id))[:50]}~{tag}",
                      rendered_at=base.rendered_at)
    session.add(copy)
    session.flush()
    test.variants = {**(test.variants or {}), key: copy.id}
    return copy.id


def _subject_variant_ids(test: SubjectTestRow) -> set[int]:
    return {int(v) for v in (test.variants or {}).values()}


def _base_rows(session: Session, test: SubjectTestRow, statuses: tuple[str, ...]) -> list[tuple[int, int]]:
    """(delivery id, variant id) of rows in ``statuses`` whose variant is a content variant, not a subject's."""
    subject_ids = _subject_variant_ids(test)
    rows = session.execute(select(DeliveryRow.id, DeliveryRow.variant_id).where(
        DeliveryRow.edition_id == test.edition_id, DeliveryRow.status.in_(statuses),
        DeliveryRow.variant_id.is_not(None)).order_by(DeliveryRow.id)).all()
    return [(d, int(v)) for d, v in rows if v is not None and v not in subject_ids]


def _move(session: Session, moves: dict[tuple[int, str], list[int]], expect: tuple[str, ...], now: datetime) -> None:
    for (variant_id, status), ids in moves.items():
        for i in range(0, len(ids), CHUNK):
            session.execute(update(DeliveryRow)
                            .where(DeliveryRow.id.in_(ids[i:i + CHUNK]), DeliveryRow.status.in_(expect))
                            .values(variant_id=variant_id, status=status, updated_at=now)
                            .execution_options(synchronize_session=False))


def _draw(session: Session, test: SubjectTestRow, now: datetime) -> None:
    rows = _base_rows(session, test, ("pending",))
    size = round(len(rows) * test.sample_percent / 100)
    chosen = random.Random(f"subject-test-{test.id}").sample(rows, size)
    moves: dict[tuple[int, str], list[int]] = {}
    for n, (delivery_id, base_id) in enumerate(sorted(chosen)):
        index = n % len(test.subjects)  # in turn: an even split, whatever the sample's size
        moves.setdefault((_subject_variant(session, test, base_id, index), "pending"), []).append(delivery_id)
    picked = {d for d, _ in chosen}
    for delivery_id, base_id in rows:
        if delivery_id not in picked:
            moves.setdefault((base_id, HELD), []).append(delivery_id)
    _move(session, moves, ("pending",), now)
    test.sample_size = size
    test.drawn_at = now


def _hold_newcomers(session: Session, test: SubjectTestRow, now: datetime) -> None:
    moves: dict[tuple[int, str], list[int]] = {}
    for delivery_id, base_id in _base_rows(session, test, ("pending",)):
        moves.setdefault((base_id, HELD), []).append(delivery_id)
    _move(session, moves, ("pending",), now)


def _to_winner(session: Session, test: SubjectTestRow, now: datetime, *, statuses: tuple[str, ...]) -> None:
    assert test.winner is not None
    moves: dict[tuple[int, str], list[int]] = {}
    for delivery_id, base_id in _base_rows(session, test, statuses):
        target = _subject_variant(session, test, base_id, test.winner, rest=True)
        moves.setdefault((target, "pending"), []).append(delivery_id)
    _move(session, moves, statuses, now)


def _decide(session: Session, test: SubjectTestRow, now: datetime) -> None:
    results = measure(session, test)
    best = max(range(len(results)), key=lambda i: (results[i]["score"], -i))
    test.winner = best
    test.results = results
    test.decided_at = now
    _to_winner(session, test, now, statuses=(HELD, "pending"))


def measure(session: Session, test: SubjectTestRow) -> list[dict[str, Any]]:
    """Per subject of the sample: deliveries given it, sent, unique clickers and unique human openers among them,
    and the score the decision uses (clickers, or openers, per message sent)."""
    by_index: dict[int, list[int]] = {}
    for key, variant_id in (test.variants or {}).items():
        _, _, which = key.partition(":")
        if which.isdigit():
            by_index.setdefault(int(which), []).append(int(variant_id))
    out = []
    for index, subject in enumerate(test.subjects):
        counts = {"sample": 0, "sent": 0, "clicks": 0, "opens": 0}
        variant_ids = by_index.get(index)
        if variant_ids:
            rows = (DeliveryRow.edition_id == test.edition_id) & DeliveryRow.variant_id.in_(variant_ids)
            counts["sample"] = _count(session, select(func.count()).select_from(DeliveryRow).where(rows))
            counts["sent"] = _count(session, select(func.count()).select_from(DeliveryRow).where(
                rows, DeliveryRow.status == "sent"))
            readers = select(DeliveryRow.subscriber_id).where(rows)
            for name, type_ in (("clicks", EventType.CLICKED), ("opens", EventType.OPENED)):
                counts[name] = _count(session, select(func.count(func.distinct(EventRow.subscriber_id))).where(
                    EventRow.edition_id == test.edition_id, EventRow.type == type_.value,
                    EventRow.subscriber_id.in_(readers)))
        metric = counts["clicks"] if test.metric == "clicks" else counts["opens"]
        out.append({"subject": subject, **counts,
                    "score": round(metric / counts["sent"], 6) if counts["sent"] else 0.0})
    return out


def report(session: Session, edition_id: int) -> dict[str, Any] | None:
    """What `digest editions show` tells about the edition's subject test (None: it has none)."""
    test = test_of(session, edition_id)
    if test is None:
        return None
    held = _count(session, select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.edition_id == edition_id, DeliveryRow.status == HELD))
    rest_ids = [int(v) for k, v in (test.variants or {}).items() if k.endswith(":rest")]
    rest = _count(session, select(func.count()).select_from(DeliveryRow).where(
        DeliveryRow.edition_id == edition_id, DeliveryRow.variant_id.in_(rest_ids))) if rest_ids else 0
    decide_at = test.drawn_at + timedelta(seconds=test.decide_after_seconds) if test.drawn_at else None
    subjects = test.results if test.winner is not None and test.results else measure(session, test)
    return {"subjects": [{**r, "winner": test.winner == i} for i, r in enumerate(subjects)],
            "sample_percent": test.sample_percent, "sample_size": test.sample_size, "metric": test.metric,
            "decide_after_seconds": test.decide_after_seconds, "drawn_at": test.drawn_at, "decide_at": decide_at,
            "decided_at": test.decided_at,
            "winner": test.subjects[test.winner] if test.winner is not None else None,
            "held": held, "sent_the_winner": rest}


def due(session: Session, now: datetime) -> list[tuple[str, date]]:
    """(list, date) of every test whose decision is due at ``now`` and not made: the scheduler sends them."""
    out = []
    for test, edition, list_name in session.execute(
            select(SubjectTestRow, EditionRow, MailingListRow.name)
            .join(EditionRow, EditionRow.id == SubjectTestRow.edition_id)
            .join(MailingListRow, MailingListRow.id == EditionRow.list_id)
            .where(SubjectTestRow.drawn_at.is_not(None), SubjectTestRow.winner.is_(None),
                   EditionRow.status.not_in(["cancelled", "skipped"]))):
        if test.drawn_at is not None and now >= test.drawn_at + timedelta(seconds=test.decide_after_seconds):
            out.append((list_name, edition.date))
    return out


def cancel_held(session: Session, edition_id: int, now: datetime) -> int:
    """A cancelled edition's held rows are cancelled with its pending ones."""
    result = session.execute(update(DeliveryRow)
                             .where(DeliveryRow.edition_id == edition_id, DeliveryRow.status == HELD)
                             .values(status="cancelled", updated_at=now, error="edition cancelled")
                             .execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(query) or 0)
